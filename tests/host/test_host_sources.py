"""What the repository says stands on its own: no code, doc or test leans on a document outside it (a
shared notes file of the people who wrote it); each fact is stated where it is used, with its source."""

from __future__ import annotations

import os
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Written in two parts so that this file does not match itself.
OUTSIDE = re.compile(r"\b" + "FA" + r"CTS\b|\.\./" + "shared|" + "DES" + r"IGN\.md")
TEXT = (".py", ".md", ".toml", ".yaml", ".yml", ".json", ".cfg", ".txt")


def repository_files() -> list[Path]:
    """The text files of the checkout, not those in tools' folders (.git, .nox, .venv, build, dist)."""
    found = []
    for folder, subfolders, names in os.walk(REPO):
        subfolders[:] = [
            name for name in subfolders if not name.startswith(".") and name not in ("build", "dist")
        ]
        found += [Path(folder, name) for name in names if name.endswith(TEXT)]
    return found


def test_no_file_refers_to_a_document_outside_the_repository() -> None:
    files = repository_files()
    found = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert len(files) > 100 and found == []
