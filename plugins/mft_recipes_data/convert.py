"""Turning the records people have (CSV, JSON Lines or a JSON array) into the examples the recipes take.

Chat: a user template and an assistant template over the column names (`{name}`), and an optional
system prompt, make one conversation per row; for a classifier trained as chat the answer can be a
category path column instead, written in one form (`Electronics > Audio > Headphones`, whatever the
input's separator and spacing). Classifier (La Plateforme): a text template, label columns as targets,
and a category path column split into the targets level1, level2, level3. The same path column gives the
same levels both ways, so one CSV feeds the self-hosted and the hosted classifier. ShareGPT records (`conversations` of `from`/`value` turns) and Alpaca
records (`instruction`, optional `input`, `output`) become chat conversations as they are.

Every example is checked by the rules of `data check` before it is written, so a conversion never writes
one the check refuses: a row that cannot become a valid example is left out and reported with its row
number. Nothing is written when the options do not fit the input (a malformed template, a column the
input does not have: UsageError), when the input cannot be read as told (its encoding, a CSV row with
more or fewer fields than the header, a line that is not JSON: ConvertError), or when no row became an
example. Rows stream through, so the input can be any size.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import difflib
import io
import itertools
import json
import re
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from mft_recipes import CategoryPath, format_path, plural
from mft_recipes_data.files import GZIP_ERRORS, UsageError, clash, is_gzip, iter_json_array, open_data
from mft_recipes_data.rules import check_chat, check_classifier

# `{{`, `}}`, a field, or a brace that is neither.
_TEMPLATE_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
# Rows reported one by one; beyond this they are only counted.
MAX_REPORTED_ROWS = 100
INPUT_FORMATS = ("csv", "jsonl", "json")

Record = dict[str, Any]


class ConvertError(ValueError):
    """An input that cannot be read as told: its encoding, a ragged CSV row, a line that is not JSON, no
    rows, or no row that became an example."""


class TemplateError(UsageError):
    """A template that is not one: a lone brace, an empty field."""


@dataclass(frozen=True)
class Template:
    """Text with `{column}` fields, filled from a row; `{{` and `}}` are literal braces. Any text but
    braces names a column (`{Product name}`, `{price:usd}`), which is why this is not `str.format`.
    `pieces` are (literal text, column or None), in order."""

    text: str
    pieces: tuple[tuple[str, str | None], ...]

    @classmethod
    def parse(cls, text: str, option: str = "the template") -> Template:
        """The template in `text`; TemplateError names `option` and where the template breaks."""
        pieces: list[tuple[str, str | None]] = []
        literal, at = "", 0
        for match in _TEMPLATE_TOKEN.finditer(text):
            literal, at, token = literal + text[at : match.start()], match.end(), match.group()
            if token in ("{{", "}}"):
                literal += token[0]
                continue
            column = match.group(1)
            if column is None or not column.strip():
                what = f"a lone {token!r}" if column is None else "an empty field {}"
                raise TemplateError(
                    f"{option} {text!r}: {what} at character {match.start() + 1}; name a column as "
                    "{column}, and write a literal brace as {{ or }}"
                )
            pieces.append((literal, column))
            literal = ""
        pieces.append((literal + text[at:], None))
        return cls(text, tuple(pieces))

    def columns(self) -> list[str]:
        return [column for _, column in self.pieces if column is not None]

    def fill(self, row: Record) -> str:
        return "".join(
            literal + (as_text(row.get(column)) if column is not None else "")
            for literal, column in self.pieces
        )


def as_text(value: Any) -> str:
    """A field's value as template text: strings as they are, other JSON values as JSON, null as ""."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


class Mapping(Protocol):
    """How a record becomes an example: the columns it reads, the format it makes (chat or classifier),
    and the example, or None and the reason it was left out."""

    kind: str

    def columns(self) -> list[str]: ...

    def example(self, record: Record) -> tuple[Record | None, str | None]: ...


def with_system(system: str | None, messages: list[Record]) -> Record:
    """A conversation, with `system` first unless it has a system message already."""
    if system and not (messages and messages[0]["role"] == "system"):
        messages = [{"role": "system", "content": system}, *messages]
    return {"messages": messages}


@dataclass(frozen=True)
class PathColumn:
    """A column holding a category path, `levels` levels with `separator` between them; read as the
    levels, each stripped and its whitespace collapsed (CategoryPath.split)."""

    column: str
    separator: str = CategoryPath.SEPARATOR
    levels: int = 3

    def read(self, record: Record) -> tuple[list[str] | None, str | None]:
        """The row's levels, or None and why the row has no path of this shape."""
        path = as_text(record.get(self.column))
        levels = CategoryPath.split(path, self.separator)
        if len(levels) != self.levels or not all(levels):
            return None, (
                f"column {self.column!r} has {path!r:.80}; expected "
                f"{self.levels} non-empty levels separated by {self.separator!r}"
            )
        return levels, None


@dataclass(frozen=True)
class ChatMapping:
    """A row becomes a conversation: the user template, the assistant template or a category path column
    (its path written `A > B > C`), an optional system prompt."""

    user: Template
    assistant: Template | PathColumn
    system: str | None = None
    kind = "chat"

    def columns(self) -> list[str]:
        answer = self.assistant
        return [
            *self.user.columns(),
            *([answer.column] if isinstance(answer, PathColumn) else answer.columns()),
        ]

    def example(self, record: Record) -> tuple[Record | None, str | None]:
        user = self.user.fill(record).strip()
        if isinstance(self.assistant, PathColumn):
            levels, reason = self.assistant.read(record)
            if levels is None:
                return None, reason
            assistant = CategoryPath.join(levels)
        else:
            assistant = self.assistant.fill(record).strip()
        if not user or not assistant:
            return None, f"the {'user' if not user else 'assistant'} template is empty for this row"
        return with_system(
            self.system, [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
        ), None


@dataclass(frozen=True)
class ClassifierMapping:
    """A row becomes a classifier example: text, label columns (target → column), and a path column
    whose levels become the targets level1..levelN."""

    text: Template
    labels: dict[str, str] = field(default_factory=dict)
    path: PathColumn | None = None
    kind = "classifier"

    def columns(self) -> list[str]:
        return [*self.text.columns(), *self.labels.values(), *([self.path.column] if self.path else [])]

    def example(self, record: Record) -> tuple[Record | None, str | None]:
        text = self.text.fill(record).strip()
        if not text:
            return None, "the text template is empty for this row"
        labels: dict[str, str] = {}
        for target, column in self.labels.items():
            value = as_text(record.get(column)).strip()
            if not value:
                return None, f"column {column!r} (target {target}) is empty"
            labels[target] = value
        if self.path is not None:
            levels, reason = self.path.read(record)
            if levels is None:
                return None, reason
            labels.update({f"level{number}": level for number, level in enumerate(levels, 1)})
        if not labels:
            return None, "no labels"
        return {"text": text, "labels": labels}, None


# ShareGPT's speakers (and the role names some of its exports use instead) → chat roles.
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
}


@dataclass(frozen=True)
class ShareGPTMapping:
    """A ShareGPT record becomes a conversation: human → user, gpt → assistant, system → system."""

    system: str | None = None
    kind = "chat"

    def columns(self) -> list[str]:
        return []

    def example(self, record: Record) -> tuple[Record | None, str | None]:
        turns = record.get("conversations")
        if not isinstance(turns, list) or not turns:
            return None, "no 'conversations' list"
        messages = []
        for index, turn in enumerate(turns):
            speaker = turn.get("from") if isinstance(turn, dict) else None
            role = SHAREGPT_ROLES.get(speaker) if isinstance(speaker, str) else None
            if role is None:
                return None, f"conversations[{index}]: speaker {speaker!r:.40} is not human, gpt or system"
            value = turn.get("value")
            if not isinstance(value, str):
                return None, f"conversations[{index}]: 'value' is not text"
            messages.append({"role": role, "content": value})
        return with_system(self.system, messages), None


@dataclass(frozen=True)
class AlpacaMapping:
    """An Alpaca record becomes a conversation: the instruction, then a blank line and the input when it
    has one, as the user; the output as the assistant."""

    system: str | None = None
    kind = "chat"

    def columns(self) -> list[str]:
        return []

    def example(self, record: Record) -> tuple[Record | None, str | None]:
        instruction, extra, output = record.get("instruction"), record.get("input"), record.get("output")
        for key, value in (("instruction", instruction), ("output", output)):
            if not isinstance(value, str) or not value.strip():
                return None, f"no {key!r} text"
        if extra is not None and not isinstance(extra, str):
            return None, "'input' is not text"
        user = instruction.strip() + (f"\n\n{extra.strip()}" if extra and extra.strip() else "")  # type: ignore[union-attr]
        return with_system(
            self.system,
            [{"role": "user", "content": user}, {"role": "assistant", "content": output.strip()}],  # type: ignore[union-attr]
        ), None


RECORD_MAPPINGS = {"sharegpt": ShareGPTMapping, "alpaca": AlpacaMapping}


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

    def skip(self, row: int, reason: str) -> None:
        self.skipped_count += 1
        if len(self.skipped) < MAX_REPORTED_ROWS:
            self.skipped.append((row, reason))


class RowReader:
    """The records of an input file, streamed as (row number, record): CSV with a header (`columns`,
    read on opening; row numbers count records after it), JSON Lines (row numbers are line numbers) or a
    JSON array (row numbers count elements). Plain or gzip, in `encoding`."""

    def __init__(
        self,
        path: str | Path,
        input_format: str | None = None,
        *,
        encoding: str = "utf-8",
        delimiter: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.encoding = encoding
        self.gzip = is_gzip(self.path)
        name = self.path.name.lower().removesuffix(".gz")
        self.delimiter = delimiter or ("\t" if name.endswith(".tsv") else ",")
        self.columns: list[str] | None = None
        self._raw: Any = None
        try:
            with self._reading():
                self._raw = open_data(self.path)
                self.format = input_format or ("csv" if name.endswith((".csv", ".tsv")) else self._sniff())
                self.text: IO[str] = io.TextIOWrapper(self._raw, encoding=encoding, newline="")
                if self.format == "csv":
                    csv.field_size_limit(sys.maxsize)
                    self._csv = csv.reader(self.text, delimiter=self.delimiter)
                    self.columns = next((fields for fields in self._csv if fields), [])
        except BaseException:
            if self._raw is not None:
                self._raw.close()
            raise

    def _sniff(self) -> str:
        """A JSON array when the data starts with `[`, else JSON Lines."""
        start = self._raw.tell()
        head = self._raw.read(4096)
        self._raw.seek(start)
        return "json" if head.lstrip().startswith(b"[") else "jsonl"

    def __enter__(self) -> RowReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.text.close()

    def __iter__(self) -> Iterator[tuple[int, Record]]:
        with self._reading():
            if self.format == "csv":
                yield from self._csv_rows()
            elif self.format == "jsonl":
                yield from self._json_lines()
            else:
                yield from self._json_array()

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """What goes wrong while reading, said as a ConvertError that names the file and the line."""
        try:
            yield
        except UnicodeDecodeError:
            raise ConvertError(undecodable(self.path, self.encoding)) from None
        except csv.Error as error:
            raise ConvertError(f"{self.path}: line {self._csv.line_num}: not CSV ({error})") from None
        except GZIP_ERRORS as error:
            if not self.gzip:
                raise
            raise ConvertError(f"{self.path}: the gzip stream is damaged ({error})") from None

    def _csv_rows(self) -> Iterator[tuple[int, Record]]:
        header = self.columns or []
        start, number = self._csv.line_num + 1, 0
        for fields in self._csv:
            if fields:
                number += 1
                if len(fields) != len(header):
                    raise ConvertError(
                        f"{self.path}: row {number} (line {start}) has {plural(len(fields), 'field')}; "
                        f"the header has {len(header)}: quote a field that holds the delimiter "
                        f"{self.delimiter!r}, or give the file's delimiter with --delimiter"
                    )
                yield number, dict(zip(header, fields, strict=True))
            start = self._csv.line_num + 1

    def _json_lines(self) -> Iterator[tuple[int, Record]]:
        for number, line in enumerate(self.text, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as error:
                raise ConvertError(f"{self.path}:{number}: not a JSON line ({error})") from None
            yield number, self._object(record, f"{self.path}:{number}")

    def _json_array(self) -> Iterator[tuple[int, Record]]:
        elements = iter_json_array(self.text, str(self.path))
        for number in itertools.count(1):
            try:
                line, record = next(elements)
            except StopIteration:
                return
            except UnicodeDecodeError:
                raise
            except ValueError as error:
                raise ConvertError(str(error)) from None
            yield number, self._object(record, f"{self.path}:{line}")

    @staticmethod
    def _object(record: Any, where: str) -> Record:
        if not isinstance(record, dict):
            raise ConvertError(f"{where}: expected a JSON object, got {type(record).__name__}")
        return record


def undecodable(path: str | Path, encoding: str) -> str:
    """Where a file stops being text in `encoding`: its line and byte, and what to do."""
    name = "UTF-8" if codecs.lookup(encoding).name.startswith("utf-8") else encoding
    decoder = codecs.getincrementaldecoder(encoding)()
    hint = "give the file's encoding with --encoding (cp1252 for Excel on Windows, latin-1, utf-16, ...)"
    with open_data(path) as raw:
        for number, line in enumerate(raw, 1):
            try:
                decoder.decode(line)
            except UnicodeDecodeError as error:
                byte = line[error.start] if error.start < len(line) else 0
                return f"{path}: line {number} is not {name} text (byte {byte:#04x} at byte {error.start + 1}); {hint}"
    return f"{path}: not {name} text; {hint}"


def convert_file(
    source: str | Path,
    output: str | Path,
    mapping: Mapping,
    *,
    input_format: str | None = None,
    encoding: str = "utf-8",
    delimiter: str | None = None,
) -> ConvertResult:
    """Convert every record of `source` with `mapping` into JSONL at `output` (written atomically, and
    not at all when the conversion fails)."""
    from mft_recipes import atomic_writer

    refused = clash([source], {"-o": output})
    if refused:
        raise UsageError(refused)
    result = ConvertResult(str(output))
    check = check_classifier if mapping.kind == "classifier" else check_chat
    with RowReader(source, input_format, encoding=encoding, delimiter=delimiter) as rows:
        if rows.columns:
            _check_columns(mapping, rows.columns, rows)
        with atomic_writer(output, "wb") as file:
            for number, record in rows:
                if result.rows == 0 and rows.columns is None:
                    _check_columns(mapping, list(record), rows)
                result.rows += 1
                example, reason = mapping.example(record)
                if example is not None:
                    line, reason = _encoded(example, check)
                if example is None or line is None:
                    result.skip(number, reason or "invalid")
                    continue
                file.write(line)
                result.written += 1
                for target, label in example.get("labels", {}).items():
                    result.labels.setdefault(target, Counter())[label] += 1
            if result.written == 0:
                raise ConvertError(_nothing_written(source, rows, result))
    return result


def _encoded(example: Record, check: Any) -> tuple[bytes | None, str | None]:
    """The example as a JSON line, or None and why `data check` would refuse it."""
    errors = [finding for finding in check(example) if finding.severity == "error"]
    if errors:
        first = errors[0]
        return None, f"{first.code}: {format_path(first.path)}: {first.message}"
    try:
        return (json.dumps(example, ensure_ascii=False) + "\n").encode("utf-8"), None
    except UnicodeEncodeError as error:
        return None, f"half a character ({error.object[error.start]!r}, a lone surrogate): not text"


def _nothing_written(source: str | Path, rows: RowReader, result: ConvertResult) -> str:
    if result.rows == 0:
        what = "only a header" if rows.columns else "the file is empty"
        return f"{source}: no rows to convert ({what}); nothing was written"
    reasons = "; ".join(f"row {row}: {reason}" for row, reason in result.skipped[:3])
    more = result.skipped_count - min(len(result.skipped), 3)
    return f"{source}: no row became an example, so nothing was written: {reasons}" + (
        f"; and {plural(more, 'more row')}" if more else ""
    )


def _check_columns(mapping: Mapping, columns: list[str], rows: RowReader) -> None:
    """Every column the mapping reads is in the input; else a UsageError with the closest names."""
    missing = [column for column in dict.fromkeys(mapping.columns()) if column not in columns]
    if not missing:
        return
    close = {column: difflib.get_close_matches(column, columns, n=1) for column in missing}
    guesses = "; ".join(
        f"did you mean {close[column][0]!r} for {column!r}" for column in missing if close[column]
    )
    message = f"{rows.path}: no column {', '.join(map(repr, missing))}" + (f" ({guesses})" if guesses else "")
    message += f"; the columns are {', '.join(map(repr, columns))}"
    if rows.format == "csv" and len(columns) == 1:
        message += f" (one column: if the file is not separated by {rows.delimiter!r}, give --delimiter)"
    raise UsageError(message)
