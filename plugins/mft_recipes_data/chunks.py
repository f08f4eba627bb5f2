"""Files as chunks of whole lines, and checking a chunk: parse each line, apply the rules, count the
tokens of the valid examples. Chunks run in this process or in worker processes, and their results come
back in file order either way.

A plain file's chunk is sent to a worker as a place in the file (path, offset, size) and the worker reads
the bytes itself. A gzip file cannot be read from the middle, so this process decompresses it, once, as
it goes, and its chunks carry their bytes to the workers through the pipe: decompression costs a few
percent of a core next to the checking, and memory stays bounded by the chunks in flight (4 per worker),
never the file.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from hashlib import blake2b
from typing import Any

from mft_recipes import CategoryPath
from mft_recipes_data.files import GZIP_ERRORS, is_gzip, open_data
from mft_recipes_data.rules import Finding, check_chat, check_classifier, classifier_text, label_values
from mft_recipes_data.tokens import ChatTokenCounter, TokenizerRefused

CHUNK_BYTES = 1 << 20


# --- reading ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    """Whole lines of file number `source`, from byte `offset` of the data it holds, starting at line
    `first_line` (1-based), and how to check them. A worker reads them from `path`, or takes `data` as
    sent when `path` is empty (a gzip file's chunks). It sends back the first `max_findings` findings in
    full and only counts the others. With `category_path` (a classifier recipe's) every chat answer must
    be such a path, and the answers are counted as labels."""

    source: int
    first_line: int
    data: bytes
    fmt: str
    tokenizer: str
    path: str = ""
    offset: int = 0
    max_findings: int = 0
    category_path: CategoryPath | None = None


def read_chunks(path: str, source: int, fmt: str, tokenizer: str, size: int = CHUNK_BYTES) -> Iterator[Chunk]:
    """The file as chunks of about `size` bytes, each ending at a line break (a longer line is one chunk).
    A UTF-8 BOM before the first line is skipped; a gzip file is decompressed (DamagedFileError when its
    stream breaks, after the chunks before the damage)."""
    compressed = is_gzip(path)
    where = "" if compressed else path  # where a worker reads a chunk's bytes (nowhere: they travel)
    line, offset = 1, 0
    pending: list[bytes] = []  # the start of a line that continues in the next block
    try:
        with open_data(path) as file:
            offset = file.tell()  # after a BOM
            while block := file.read(size):
                end = block.rfind(b"\n")
                if end < 0:
                    pending.append(block)
                    continue
                data = b"".join([*pending, block[: end + 1]])
                pending = [block[end + 1 :]]
                yield Chunk(source, line, data, fmt, tokenizer, where, offset)
                line += data.count(b"\n")
                offset += len(data)
    except GZIP_ERRORS as error:
        if not compressed:
            raise
        raise DamagedFileError(
            f"the gzip stream is damaged after {offset:,} bytes of data, in line {line} ({error}); "
            "the lines before it were checked"
        ) from None
    tail = b"".join(pending)
    if tail:
        yield Chunk(source, line, tail, fmt, tokenizer, where, offset)


class DamagedFileError(ValueError):
    """A gzip file whose stream breaks (truncated or corrupted)."""


class FileChangedError(ValueError):
    """A worker found fewer bytes at a chunk's place than the parent read there."""


# --- checking a chunk (in a worker) ------------------------------------------------------------------


@dataclass
class ChunkResult:
    """What one chunk holds. `valid` has (line, tokens, first trained token, digest) per valid example;
    `invalid` has (line, first error code) per invalid one; `findings` the first `limit` findings in
    full (`counts` counts them all)."""

    valid: list[tuple[int, int, int, int]] = field(default_factory=list)
    invalid: list[tuple[int, str]] = field(default_factory=list)
    blank: list[int] = field(default_factory=list)
    findings: list[tuple[int, Finding]] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    labels: dict[str, Counter] = field(default_factory=dict)
    limit: int = 0

    def note(self, line: int, findings: list[Finding]) -> None:
        """Count a line's findings, and keep them in full while fewer than `limit` are kept. A line's
        findings are kept together, so the findings kept are exactly those of the chunk's first lines."""
        keep = len(self.findings) < self.limit
        for finding in findings:
            self.counts[finding.code] += 1
            if keep:
                self.findings.append((line, finding))


_counters: dict[str, ChatTokenCounter] = {}


def _counter(version: str) -> ChatTokenCounter:
    """This process's counter for a tokenizer version, loaded once."""
    counter = _counters.get(version)
    if counter is None:
        counter = _counters[version] = ChatTokenCounter(version)
    return counter


def check_chunk(chunk: Chunk) -> ChunkResult:
    """Check every line of a chunk: parse, apply the rules, count the tokens of the valid examples."""
    counter = _counter(chunk.tokenizer)
    classifier = chunk.fmt == "classifier"
    result = ChunkResult(limit=chunk.max_findings)
    lines = chunk.data.split(b"\n")
    if chunk.data.endswith(b"\n"):
        lines.pop()
    for offset, raw in enumerate(lines):
        number = chunk.first_line + offset
        if not raw.strip():
            result.blank.append(number)
            result.note(number, [Finding("W_BLANK_LINE", (), "a blank line; trainers skip or refuse it")])
            continue
        example, findings = _parse(raw)
        if not findings:
            findings = check_classifier(example) if classifier else check_chat(example)
            if chunk.category_path is not None and not classifier:
                findings += _category_path_findings(example, chunk.category_path, findings)
        error = next((finding.code for finding in findings if finding.severity == "error"), None)
        if error is None:
            try:
                tokens, trained_from = (
                    (counter.count_text(classifier_text(example)), 1)
                    if classifier
                    else counter.count_chat(example)
                )
            except TokenizerRefused as refused:
                error = "E_TOKENIZER"
                findings.append(Finding(error, (), str(refused)))
        result.note(number, findings)
        if error is not None:
            result.invalid.append((number, error))
            continue
        result.valid.append((number, tokens, trained_from, _digest(raw)))
        if classifier:
            for target, values in label_values(example).items():
                result.labels.setdefault(target, Counter()).update(values)
        elif chunk.category_path is not None and isinstance(
            answer := example["messages"][-1].get("content"), str
        ):
            result.labels.setdefault(PATH_TARGET, Counter())[answer] += 1
    return result


PATH_TARGET = "path"  # the labels of a classifier trained as chat: its answers, category paths


def _category_path_findings(example: Any, shape: CategoryPath, findings: list[Finding]) -> list[Finding]:
    """E_ANSWER_PATH for each trained answer (weight not 0) of a valid chat example that is not a category
    path of `shape`."""
    if any(finding.severity == "error" for finding in findings):
        return []
    return [
        Finding("E_ANSWER_PATH", ("messages", index, "content"), f"the answer {problem}")
        for index, message in enumerate(example["messages"])
        if message["role"] == "assistant" and message.get("weight", 1) != 0
        if isinstance(message.get("content"), str) and (problem := shape.problem(message["content"]))
    ]


def check_chunk_in_file(chunk: Chunk, size: int) -> ChunkResult:
    """Check a chunk sent without its bytes: the worker reads them from the file (from the page cache,
    where the parent's read left them). Sending a megabyte through a pipe instead wakes the parent for
    every 64 KB while both cores are busy checking, and the worker waits for it."""
    with open(chunk.path, "rb") as file:
        data = os.pread(file.fileno(), size, chunk.offset)
    if len(data) != size:
        raise FileChangedError(f"{chunk.path}: the file changed while it was being checked; check it again")
    return check_chunk(replace(chunk, data=data))


def _parse(raw: bytes) -> tuple[Any, list[Finding]]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return None, [
            Finding("E_ENCODING", (), f"not UTF-8 text (byte {error.start}); save the file as UTF-8")
        ]
    try:
        return json.loads(text), []
    except RecursionError:
        return None, [Finding("E_JSON", (), "invalid JSON: nested too deeply to read")]
    except ValueError as error:
        reason = getattr(error, "msg", str(error))
        column = getattr(error, "colno", None)
        where = f" at column {column}" if column is not None else ""
        return None, [Finding("E_JSON", (), f"invalid JSON{where}: {reason}")]


def _digest(raw: bytes) -> int:
    """8 bytes that are equal for identical lines (surrounding whitespace aside). Hashing the line, not
    a canonical form of its JSON, costs next to nothing; an example written twice by the same tool is
    the same line."""
    return int.from_bytes(blake2b(raw.strip(), digest_size=8).digest(), "little")


# --- running chunks, in order, in this process or in workers -----------------------------------------


def run_chunks(chunks: Iterator[Chunk], workers: int, tokenizer: str) -> Iterator[tuple[Chunk, ChunkResult]]:
    """Each chunk with its result, in order. With several workers at most 4 × workers chunks are in
    flight, so reading never runs far ahead of checking, yet a worker that finishes early finds the
    next chunks queued while the oldest one is still being checked (results are taken in file order)."""
    if workers <= 1:
        for chunk in chunks:
            yield chunk, check_chunk(chunk)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # On Linux the workers are forked after this process has loaded the tokenizer, so they start at once
    # and share its memory (and nothing re-imports the caller's __main__). Elsewhere fork is unsafe.
    fork = sys.platform.startswith("linux")
    if fork:
        _counter(tokenizer)
    context = multiprocessing.get_context("fork" if fork else "spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        pending: deque = deque()
        for chunk in chunks:
            if chunk.path:
                future = pool.submit(check_chunk_in_file, replace(chunk, data=b""), len(chunk.data))
            else:
                future = pool.submit(check_chunk, chunk)
            pending.append((chunk, future))
            if len(pending) >= 4 * workers:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
