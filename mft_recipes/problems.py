"""Problems found in a document, said so that a person can find and fix them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

KeyPath = tuple[str | int, ...]


def format_path(path: KeyPath) -> str:
    """`('datasets', 0, 'type')` → `datasets[0].type`; the empty path is the document itself."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(document)"


@dataclass(frozen=True)
class Problem:
    """One thing wrong (severity "error") or doubtful ("warning") in a document."""

    message: str
    path: KeyPath = ()
    code: str = "invalid"
    severity: str = "error"
    source: str = "schema"
    file: str | None = None
    line: int | None = None

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def located(self, file: str | None, lines: dict[KeyPath, int] | None) -> Problem:
        """This problem with its file and the line of its key (or of the nearest enclosing key)."""
        line = self.line
        if lines and line is None:
            path = self.path
            while path not in lines and path:
                path = path[:-1]
            line = lines.get(path)
        return replace(self, file=file if file is not None else self.file, line=line)

    def __str__(self) -> str:
        where = ":".join(str(part) for part in (self.file, self.line) if part is not None)
        prefix = f"{where}: " if where else ""
        return f"{prefix}{self.severity}: {format_path(self.path)}: {self.message} [{self.code}]"

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "path": format_path(self.path),
            "severity": self.severity,
            "code": self.code,
            "source": self.source,
            "message": self.message,
        }
