"""Data files as people have them, and the outputs written from them.

Reading: plain or gzip-compressed (told by gzip's magic bytes, not by the name), with or without the
UTF-8 byte-order mark that Windows editors put first, as JSON Lines or as one JSON array (read an element
at a time, so memory holds one element, not the file). Sniffing: whether a file meant to be JSON Lines is
a JSON array, or holds ShareGPT or Alpaca records that `data convert --from` turns into chat.

Writing: an output must be neither an input nor another output, under any name (`./x`, a symlink, a
hard link), or one write destroys data that nothing else holds.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

GZIP_MAGIC = b"\x1f\x8b"
BOM = b"\xef\xbb\xbf"
# What reading a damaged or truncated gzip stream raises: BadGzipFile (an OSError), EOFError, zlib.error.
GZIP_ERRORS = (OSError, EOFError, zlib.error)
# How much of a JSON array is read at a time.
ARRAY_BLOCK = 1 << 20
_JSON_SPACE = re.compile(r"[ \t\n\r]*")

RECORD_FORMATS = {
    "sharegpt": "ShareGPT records (`conversations` of `from`/`value` turns)",
    "alpaca": "Alpaca records (`instruction`, `input`, `output`)",
}


class UsageError(ValueError):
    """The options do not fit the files: an output that is an input or another output, a column or label
    target the data does not have. The commands exit 2 on it."""


def is_gzip(path: str | Path) -> bool:
    with open(path, "rb") as file:
        return file.read(2) == GZIP_MAGIC


def open_data(path: str | Path) -> IO[bytes]:
    """The bytes the file holds: decompressed when it is gzip, after a UTF-8 BOM when it starts with one.
    Reading a damaged gzip stream raises one of GZIP_ERRORS."""
    stream: Any = gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")  # noqa: SIM115
    try:
        if stream.read(len(BOM)) != BOM:
            stream.seek(0)
    except BaseException:
        stream.close()
        raise
    return stream


def data_size(path: str | Path) -> int:
    """The bytes the file holds: its size, or for gzip the size its trailer records (RFC 1952's ISIZE:
    exact for a single stream under 4 GiB, at most the true size otherwise)."""
    size = os.path.getsize(path)
    if not is_gzip(path) or size < 18:
        return size
    with open(path, "rb") as file:
        file.seek(-4, os.SEEK_END)
        return int.from_bytes(file.read(4), "little")


def iter_json_array(text: IO[str], name: str) -> Iterator[tuple[int, Any]]:
    """(line, element) for each element of the JSON array `text` holds, where line is the line the
    element starts on. Raises ValueError naming `name` and the line where the array breaks."""
    decoder = json.JSONDecoder()
    buffer, position, line, done = "", 0, 1, False

    def more() -> bool:
        nonlocal buffer, position, done
        block = text.read(ARRAY_BLOCK)
        done = not block
        buffer, position = buffer[position:] + block, 0
        return not done

    def skip_space() -> str:
        """The next character that is not whitespace ('' at the end), counting lines on the way."""
        nonlocal position, line
        while True:
            end = _JSON_SPACE.match(buffer, position).end()  # type: ignore[union-attr]
            line += buffer.count("\n", position, end)
            position = end
            if position < len(buffer) or not more():
                return buffer[position : position + 1]

    def broken(expected: str, at: int | None = None) -> ValueError:
        where = line + buffer.count("\n", position, at) if at is not None else line
        return ValueError(f"{name}:{where}: not a JSON array: expected {expected}")

    if skip_space() != "[":
        raise broken("'[' at the start")
    position += 1
    if skip_space() == "]":
        return
    while True:
        while True:
            try:
                value, end = decoder.raw_decode(buffer, position)
            except json.JSONDecodeError as error:
                failure = broken(f"a value ({error.msg})", error.pos)
                if done or not more():
                    raise failure from None
                continue
            if end < len(buffer) or done or not more():
                break  # a number at the end of the buffer may go on in the next block
        start = line
        line += buffer.count("\n", position, end)
        position = end
        yield start, value
        following = skip_space()
        position += 1
        if following == "]":
            return
        if following != ",":
            raise broken("',' or ']' after an element")
        skip_space()


@dataclass(frozen=True)
class Sniffed:
    """What a file meant to be JSON Lines is: one JSON array (`array`), and the record format of its
    first record when that is one `data convert --from` reads (`record`)."""

    array: bool = False
    record: str | None = None


def record_format(record: Any) -> str | None:
    """ "sharegpt" or "alpaca" when `record` has that shape (and no chat or classifier keys), else None."""
    if not isinstance(record, dict) or "messages" in record or "text" in record:
        return None
    turns = record.get("conversations")
    if isinstance(turns, list) and turns and isinstance(turns[0], dict) and "from" in turns[0]:
        return "sharegpt"
    if "instruction" in record and "output" in record:
        return "alpaca"
    return None


def sniff(path: str | Path) -> Sniffed:
    """Read the start of a file: a first non-blank line that opens an array and does not close it on
    that line, or an array on the only line, makes it a JSON array; the first record gives the format.
    A file that cannot be decoded is left to the line-by-line check, which says where."""
    try:
        with open_data(path) as raw:
            lines = (line for line in io.TextIOWrapper(raw, encoding="utf-8") if line.strip())
            first = next(lines, None)
            if first is None:
                return Sniffed()
            try:
                value = json.loads(first)
            except ValueError:
                value = None
            if not first.lstrip().startswith("["):
                return Sniffed(record=record_format(value))
            if value is not None and next(lines, None) is not None:
                return Sniffed()  # JSON Lines whose first line is a list: the check says so by line
    except (UnicodeDecodeError, *GZIP_ERRORS):
        return Sniffed()
    return Sniffed(array=True, record=record_format(first_element(path)))


def first_element(path: str | Path) -> Any:
    """The first element of the JSON array in the file, or None when it has none or breaks first."""
    try:
        with open_data(path) as raw:
            return next((value for _, value in iter_json_array(io.TextIOWrapper(raw, "utf-8"), "")), None)
    except (ValueError, *GZIP_ERRORS):
        return None


def clash(inputs: Iterable[str | Path], outputs: Mapping[str, str | Path]) -> str | None:
    """Why these outputs cannot be written (an output that is an input, two outputs that are one file),
    or None. The keys of `outputs` name each as the user gave it (`--train`)."""
    for output_name, output in outputs.items():
        for source in inputs:
            if same_file(output, source):
                return (
                    f"{output_name} {output} is the input {source}: writing it would destroy the data; "
                    "choose another path"
                )
    names = list(outputs)
    for index, first in enumerate(names):
        for second in names[index + 1 :]:
            if same_file(outputs[first], outputs[second]):
                return (
                    f"{first} {outputs[first]} and {second} {outputs[second]} are the same file: one would "
                    "overwrite the other; give two paths"
                )
    return None


def same_file(first: str | Path, second: str | Path) -> bool:
    """Whether two paths name one file: the same inode when both exist (a hard link too), else the same
    path once `.`, `..` and symlinks are resolved."""
    try:
        return os.path.samefile(first, second)
    except OSError:
        return Path(first).resolve() == Path(second).resolve()
