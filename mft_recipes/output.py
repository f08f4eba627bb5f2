"""Writing outputs so that nothing is half-written: a temporary file in the same folder, renamed into place.

A file written is readable as any file the user makes is: a new one gets 0666 less the umask (with a
umask of 022, 0644), as `open()` gives it, so a trainer running as another user or in a container can
read the config; a file that exists keeps its mode. A symlink is followed (its target is replaced and
the link stays a link), and a path that is not a regular file (`/dev/stdout`, a FIFO) is written in place.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_writer(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Open a temporary file beside the file `path` names; on success it replaces that file, on error it
    is removed and the file is as it was."""
    encoding = None if "b" in mode else encoding
    if _is_special(path):  # renaming over a device or a FIFO would replace it with a plain file
        with open(path, mode, encoding=encoding) as file:
            yield file
        return
    target = Path(os.path.realpath(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = _create_beside(target)
    try:
        with os.fdopen(handle, mode, encoding=encoding) as file:
            yield file
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _is_special(path: str | Path) -> bool:
    """`path` exists (through any symlinks) and is neither a regular file nor a folder."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _create_beside(target: Path) -> tuple[int, Path]:
    """An empty temporary file in `target`'s folder, opened for writing, with the mode `target` has, or
    else the mode the kernel gives a new file (0666 less the umask; mkstemp's would be 0600)."""
    try:
        kept: int | None = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        kept = None
    while True:
        temporary = target.with_name(f".{target.name}.{os.urandom(4).hex()}.tmp")
        try:
            handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        if kept is not None:
            os.chmod(temporary, kept)
        return handle, temporary


def why_unwritable(path: str | Path) -> str | None:
    """Why a file cannot be written at `path`, found before any work is done (None when it can): it is a
    folder, a folder on its way is a file, or the folder that would hold it is not writable."""
    target = Path(path)
    if target.is_dir():
        return "it is a folder"
    if _is_special(target):
        return None if os.access(target, os.W_OK) else "it is not writable"
    folder = Path(os.path.realpath(target)).parent
    while not folder.exists() and not folder.is_symlink():
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is not a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"the folder {folder} is not writable"
    return None


def why_write_failed(path: str | Path, error: OSError) -> str:
    """What to say when writing `path` failed although `why_unwritable` saw no reason (a folder such as
    /proc that takes no new file, a full disk): the folder and the system's reason, not the temporary name."""
    folder = Path(os.path.realpath(path)).parent
    return f"cannot write a file in {folder}: {error.strerror or error}"


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write `text` to `path` in one step."""
    with atomic_writer(path) as file:
        file.write(text)
