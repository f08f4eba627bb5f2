"""Files the tool writes: whole or not at all, readable by whoever the umask lets read a new file (axolotl
often runs as another user, or in a container), the mode of a file that exists kept, a symlink followed
(its target replaced, the link still a link), a FIFO or device written in place."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mft_recipes.output import atomic_writer, write_text_atomic
from tests.refusals import mft

CHAT = '{"messages": [{"role": "user", "content": "Q%d?"}, {"role": "assistant", "content": "A%d."}]}\n'


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    """Set the process's umask for the test; the old one comes back after it."""
    old = os.umask(0o022)

    def set_umask(value: int) -> None:
        os.umask(value)

    yield set_umask
    os.umask(old)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(
    "mask, expected", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600), (0, 0o666)], ids=oct
)
def test_a_new_file_follows_the_umask(
    tmp_path: Path, umask: Callable[[int], None], mask: int, expected: int
) -> None:
    umask(mask)
    target = tmp_path / "config.yml"
    write_text_atomic(target, "a: 1\n")
    assert oct(mode_of(target)) == oct(expected)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o755, 0o444], ids=oct)
def test_an_overwritten_file_keeps_its_mode(tmp_path: Path, umask: Callable[[int], None], mode: int) -> None:
    umask(0o077)
    target = tmp_path / "config.yml"
    target.write_text("old\n")
    target.chmod(mode)
    write_text_atomic(target, "new\n")
    assert (target.read_text(), oct(mode_of(target))) == ("new\n", oct(mode))


def test_writing_to_a_symlink_writes_its_target(tmp_path: Path, umask: Callable[[int], None]) -> None:
    real = tmp_path / "configs" / "real.yml"
    real.parent.mkdir()
    real.write_text("old\n")
    real.chmod(0o640)
    link = tmp_path / "current.yml"
    link.symlink_to(Path("configs") / "real.yml")
    write_text_atomic(link, "new\n")
    assert link.is_symlink() and os.readlink(link) == str(Path("configs") / "real.yml")
    assert (real.read_text(), oct(mode_of(real))) == ("new\n", "0o640")
    assert sorted(path.name for path in real.parent.iterdir()) == ["real.yml"], "no temporary file left"


def test_a_dangling_symlink_gets_its_target_made(tmp_path: Path, umask: Callable[[int], None]) -> None:
    link = tmp_path / "current.yml"
    link.symlink_to("made.yml")
    write_text_atomic(link, "new\n")
    assert link.is_symlink() and (tmp_path / "made.yml").read_text() == "new\n"


def test_a_fifo_is_written_in_place(tmp_path: Path) -> None:
    """`-o /dev/stdout` and process substitution name a pipe: renaming a file over it would replace the
    pipe (or, as root, the device) with a plain file, and the reader would get nothing."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    write_text_atomic(fifo, "through the pipe\n")
    reader.join(timeout=10)
    assert received == [b"through the pipe\n"]
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_a_failed_write_leaves_the_file_and_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "out.yml"
    target.write_text("old\n")
    target.chmod(0o640)
    with pytest.raises(RuntimeError), atomic_writer(target) as file:
        file.write("half of the new")
        raise RuntimeError("disk full")
    assert (target.read_text(), oct(mode_of(target))) == ("old\n", "0o640")
    assert [path.name for path in tmp_path.iterdir()] == ["out.yml"]


# Every command that writes a file the user names, with the arguments that make it write `out` in `folder`.
WRITERS: dict[str, Callable[[Path], list[str]]] = {
    "render -o": lambda folder: ["render", "mistral-7b-lora", "dataset=x.jsonl", "-o", str(folder / "out")],
    "plan --plot": lambda folder: ["plan", "mistral-7b-lora", "--plot", str(folder / "out.png")],
    "data convert -o": lambda folder: [
        *("data", "convert", str(folder / "in.csv"), "-o", str(folder / "out")),
        *("--user", "{q}", "--assistant", "{a}"),
    ],
    "data split": lambda folder: [
        *("data", "split", str(folder / "in.jsonl"), "--count", "1"),
        *("--train", str(folder / "train"), "--validation", str(folder / "out")),
    ],
    "data check --write-clean": lambda folder: [
        *("data", "check", str(folder / "in.jsonl"), "--write-clean", str(folder / "out")),
    ],
}


@pytest.mark.parametrize("name", WRITERS)
def test_every_command_writes_files_the_umask_lets_others_read(
    name: str, tmp_path: Path, umask: Callable[[int], None]
) -> None:
    if name.startswith("data"):
        pytest.importorskip("mistral_common", reason="the data commands count tokens with mistral-common")
    if name.startswith("plan --plot"):
        pytest.importorskip("matplotlib", reason="--plot draws with matplotlib (the plot extra)")
    (tmp_path / "in.csv").write_text("q,a\nWhat?,That.\n")
    (tmp_path / "in.jsonl").write_text("".join(CHAT % (number, number) for number in range(4)))
    umask(0o022)
    result = mft(*WRITERS[name](tmp_path))
    assert result.exit_code == 0, result.output
    (written,) = tmp_path.glob("out*")
    assert oct(mode_of(written)) == "0o644"
