"""Generated parts of Markdown files: the text between `<!-- NAME:start -->` and `<!-- NAME:end -->`.

scripts/update_readme.py, scripts/update_plugin_docs.py and tests/truth/proof_table.py each generate one
such part; this is how all of them put it in place, and check that the committed file is current.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mft_recipes.output import write_text_atomic


def markers(name: str) -> tuple[str, str]:
    """The start and end markers of the part `name`."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def replace_part(text: str, name: str, content: str, where: str = "the text") -> str:
    """`text` with what is between the markers of `name` replaced by `content`; nothing else changes."""
    start, end = markers(name)
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise ValueError(f"{where} must hold {start} and then {end}, once each")
    head, rest = text.split(start)
    _, tail = rest.split(end)
    return f"{head}{start}\n{content}\n{end}{tail}"


def update_part(path: Path, name: str, content: str, *, check: bool, command: str) -> int:
    """Write `content` between the markers of `name` in `path`; with `check`, only say whether the file
    is current. Returns the exit status: 1 when checking a file that is out of date, else 0."""
    current = path.read_text(encoding="utf-8")
    wanted = replace_part(current, name, content, where=path.name)
    if current == wanted:
        return 0
    if check:
        print(f"{path.name}: the {name} part is out of date; run `{command}`", file=sys.stderr)
        return 1
    write_text_atomic(path, wanted)
    print(f"{path.name}: the {name} part is updated", file=sys.stderr)
    return 0
