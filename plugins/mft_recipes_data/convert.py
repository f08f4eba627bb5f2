"""Turning the rows people have (CSV or JSONL) into the examples the recipes take.

Chat: a user template and an assistant template over the column names (`{name}`), and an optional
system prompt, make one conversation per row. Classifier (La Plateforme): a text template, label columns
as targets, and a category path column such as `Electronics > Audio > Headphones` split into the
targets level1, level2, level3. Rows stream through, so the input can be any size; a row that cannot
become a valid example is left out and reported with its row number.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_FIELD = re.compile(r"\{([^{}]+)\}")
# Rows reported one by one; beyond this they are only counted.
MAX_REPORTED_ROWS = 100


class ConvertError(ValueError):
    """A conversion that cannot start: an unreadable input, a template naming no column, bad options."""


@dataclass(frozen=True)
class Template:
    """Text with `{column}` fields, filled from a row. `{{` and `}}` are literal braces."""

    text: str

    def columns(self) -> list[str]:
        return _FIELD.findall(self._unescaped())

    def fill(self, row: dict[str, str]) -> str:
        filled = _FIELD.sub(lambda match: row.get(match.group(1), ""), self._unescaped())
        return filled.replace("\0", "{").replace("\1", "}")

    def _unescaped(self) -> str:
        return self.text.replace("{{", "\0").replace("}}", "\1")


@dataclass(frozen=True)
class ChatMapping:
    """How a row becomes a conversation."""

    user: Template
    assistant: Template
    system: str | None = None

    def columns(self) -> list[str]:
        return [*self.user.columns(), *self.assistant.columns()]

    def example(self, row: dict[str, str]) -> tuple[dict[str, Any] | None, str | None]:
        user, assistant = self.user.fill(row).strip(), self.assistant.fill(row).strip()
        if not user or not assistant:
            return None, f"the {'user' if not user else 'assistant'} template is empty for this row"
        messages = [{"role": "system", "content": self.system}] if self.system else []
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
        return {"messages": messages}, None


@dataclass(frozen=True)
class ClassifierMapping:
    """How a row becomes a classifier example: text, label columns (target → column), and a path column
    split on `separator` into `levels` targets named level1..levelN."""

    text: Template
    labels: dict[str, str] = field(default_factory=dict)
    path_column: str | None = None
    separator: str = ">"
    levels: int = 3

    def columns(self) -> list[str]:
        return [
            *self.text.columns(),
            *self.labels.values(),
            *([self.path_column] if self.path_column else []),
        ]

    def example(self, row: dict[str, str]) -> tuple[dict[str, Any] | None, str | None]:
        text = self.text.fill(row).strip()
        if not text:
            return None, "the text template is empty for this row"
        labels: dict[str, str] = {}
        for target, column in self.labels.items():
            value = row.get(column, "").strip()
            if not value:
                return None, f"column {column!r} (target {target}) is empty"
            labels[target] = value
        if self.path_column is not None:
            parts = [part.strip() for part in row.get(self.path_column, "").split(self.separator)]
            if len(parts) != self.levels or not all(parts):
                return None, (
                    f"column {self.path_column!r} has {row.get(self.path_column, '')!r:.80}; expected "
                    f"{self.levels} non-empty levels separated by {self.separator!r}"
                )
            labels.update({f"level{number}": part for number, part in enumerate(parts, 1)})
        if not labels:
            return None, "no labels"
        return {"text": text, "labels": labels}, None


@dataclass
class ConvertResult:
    """What a conversion wrote and what it left out."""

    output: str
    rows: int = 0
    written: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)
    skipped_count: int = 0
    labels: dict[str, Counter] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "rows": self.rows,
            "written": self.written,
            "skipped": self.skipped_count,
            "skipped_rows": [{"row": row, "reason": reason} for row, reason in self.skipped],
            "labels": {target: len(counts) for target, counts in self.labels.items()},
        }


def read_rows(path: str | Path, input_format: str | None = None) -> Iterator[tuple[int, dict[str, str]]]:
    """(row number, {column: text}) for each row of a CSV (with a header) or JSONL file, streamed.
    Row numbers are the file's line numbers for JSONL and the record number after the header for CSV."""
    path = Path(path)
    kind = input_format or ("csv" if path.suffix.lower() in (".csv", ".tsv") else "jsonl")
    if kind == "csv":
        with path.open(newline="", encoding="utf-8-sig") as file:
            dialect = "excel-tab" if path.suffix.lower() == ".tsv" else "excel"
            csv.field_size_limit(sys.maxsize)
            for number, row in enumerate(csv.DictReader(file, dialect=dialect), 1):
                yield number, {str(key): "" if value is None else str(value) for key, value in row.items()}
        return
    with path.open(encoding="utf-8") as file:
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as error:
                raise ConvertError(f"{path}:{number}: not a JSON line ({error})") from error
            if not isinstance(record, dict):
                raise ConvertError(f"{path}:{number}: expected a JSON object per line")
            yield number, {str(key): _text(value) for key, value in record.items()}


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def convert_file(
    source: str | Path,
    output: str | Path,
    mapping: ChatMapping | ClassifierMapping,
    *,
    input_format: str | None = None,
) -> ConvertResult:
    """Convert every row of `source` with `mapping` into JSONL at `output` (written atomically)."""
    from mft_recipes.output import atomic_writer

    if Path(output).resolve() == Path(source).resolve():
        raise ConvertError(f"{output}: the output must not overwrite the input")
    result = ConvertResult(str(output))
    rows = read_rows(source, input_format)
    with atomic_writer(output) as file:
        for number, row in rows:
            if result.rows == 0:
                _check_columns(mapping, row, source)
            result.rows += 1
            example, reason = mapping.example(row)
            if example is None:
                result.skipped_count += 1
                if len(result.skipped) < MAX_REPORTED_ROWS:
                    result.skipped.append((number, reason or "invalid"))
                continue
            file.write(json.dumps(example, ensure_ascii=False) + "\n")
            result.written += 1
            for target, label in example.get("labels", {}).items():
                result.labels.setdefault(target, Counter())[label] += 1
    return result


def _check_columns(mapping: ChatMapping | ClassifierMapping, row: dict[str, str], source: str | Path) -> None:
    missing = [column for column in mapping.columns() if column not in row]
    if missing:
        raise ConvertError(
            f"{source}: no column {', '.join(map(repr, missing))}; the columns are {', '.join(map(repr, row))}"
        )
