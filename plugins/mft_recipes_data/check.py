"""Checking training files: every rule, exact token counts, duplicates, size limits, a clean copy.

Files are read in chunks of whole lines and each chunk is checked on its own (in worker processes when
the files are big enough to pay for them), so memory stays bounded whatever the file size: what grows
with the data is two numbers (tokens, first trained token) and one 8-byte digest per valid example, plus
at most `max_problems` problems kept in detail per file (the others are only counted). Results come back
in file order, so line numbers, "duplicate of line N" and the clean copy are the same with one process or
many.

Files may be gzip-compressed and may start with a UTF-8 BOM. A file that is not JSON Lines of examples
at all (one JSON array, ShareGPT or Alpaca records, told from its start) gets one message saying what it
is and how to convert it, instead of the same error on every line.
"""

from __future__ import annotations

import contextlib
import importlib.util
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from mft_recipes import CategoryPath, Problem, plural
from mft_recipes_data.chunks import (
    CHUNK_BYTES,
    PATH_TARGET,
    Chunk,
    ChunkResult,
    DamagedFileError,
    FileChangedError,
    read_chunks,
    run_chunks,
    usable_cpus,
)
from mft_recipes_data.files import RECORD_FORMATS, clash, data_size, sniff
from mft_recipes_data.rules import CODES
from mft_recipes_data.tokens import TokenizerChoice, choose_tokenizer
from mft_recipes_data.training import (
    DROPPED,
    KEPT,
    RAISES,
    TRUNCATED,
    UNTRAINED,
    EpochEstimate,
    TrainingSettings,
    axolotl_fate,
    estimate_epoch,
    kept_tokens,
    recipe_settings,
    trains,
)

FORMATS = ("chat", "classifier")
ROLES = ("train", "validation")
# La Plateforme's limits per uploaded file, in bytes (decimal megabytes: the stricter reading).
SIZE_LIMITS = {"train": 512_000_000, "validation": 1_000_000}
MAX_PROBLEMS = 1000
# What a file is instead of JSON Lines of examples, or why its lines stop: "no examples" would add nothing.
FILE_VERDICTS = {"E_JSON_ARRAY", "E_OTHER_FORMAT", "E_GZIP"}

Progress = Callable[[int, int], None]


class CheckError(ValueError):
    """A check that cannot run: an unknown model, recipe, format or role, or a clean copy over an input."""


@dataclass
class FileReport:
    """What the check found in one file."""

    file: str
    role: str
    size_bytes: int
    examples: int = 0
    valid_examples: int = 0
    invalid_examples: int = 0
    blank_lines: int = 0
    duplicates: int = 0
    token_counts: array = field(default_factory=lambda: array("L"))
    trained_from: array = field(default_factory=lambda: array("L"))  # first trained token, 0 for none
    problems: list[Problem] = field(default_factory=list)
    problem_counts: Counter = field(default_factory=Counter)
    labels: dict[str, Counter] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return not any(CODES[code][0] == "error" for code in self.problem_counts)

    @property
    def total_tokens(self) -> int:
        return sum(self.token_counts)

    @property
    def problems_omitted(self) -> int:
        return sum(self.problem_counts.values()) - len(self.problems)

    def add(self, problem: Problem, limit: int) -> None:
        self.problem_counts[problem.code] += 1
        if len(self.problems) < limit:
            self.problems.append(problem)

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "role": self.role,
            "valid": self.valid,
            "size_bytes": self.size_bytes,
            "examples": self.examples,
            "valid_examples": self.valid_examples,
            "invalid_examples": self.invalid_examples,
            "blank_lines": self.blank_lines,
            "duplicates": self.duplicates,
            "tokens": token_stats(self.token_counts),
            "labels": {target: dict(counts.most_common()) for target, counts in self.labels.items()},
            "problem_counts": dict(sorted(self.problem_counts.items())),
            "problems": [problem.as_json() for problem in self.problems],
            "problems_omitted": self.problems_omitted,
        }


@dataclass
class CleanResult:
    """The clean copy `--write-clean` wrote: how many examples, and why the others were left out."""

    output: str
    written: int = 0
    left_out: Counter = field(default_factory=Counter)

    def as_json(self) -> dict[str, Any]:
        return {"output": self.output, "written": self.written, "left_out": dict(self.left_out.most_common())}


@dataclass
class CheckReport:
    """The outcome of checking one or more files with one tokenizer (and, optionally, a recipe)."""

    format: str
    tokenizer: TokenizerChoice
    files: list[FileReport]
    training: TrainingSettings | None = None
    clean: CleanResult | None = None

    @property
    def valid(self) -> bool:
        return all(report.valid for report in self.files)

    @property
    def examples(self) -> int:
        return sum(report.examples for report in self.files)

    @property
    def valid_examples(self) -> int:
        return sum(report.valid_examples for report in self.files)

    @property
    def total_tokens(self) -> int:
        """Tokens of every valid example, as the model sees them."""
        return sum(report.total_tokens for report in self.files)

    @property
    def problems(self) -> list[Problem]:
        return [problem for report in self.files for problem in report.problems]

    def token_counts(self, role: str | None = None) -> list[int]:
        return [
            count for report in self.files if role in (None, report.role) for count in report.token_counts
        ]

    @property
    def epoch(self) -> EpochEstimate | None:
        """How the training files meet the recipe (None without --recipe)."""
        if self.training is None:
            return None
        return estimate_epoch(self.training, self._training_examples())

    @property
    def trained_tokens(self) -> int:
        """The tokens of the training files as the trainer takes them, before val_set_size is held out:
        with a recipe, those of the examples axolotl keeps (`axolotl_fate`: not those over sequence_len
        it drops), each cut to sequence_len; without one, every valid training example's."""
        examples = self._training_examples()
        if self.training is None:
            return sum(tokens for tokens, _ in examples)
        return sum(kept_tokens(self.training, examples))

    def _training_examples(self) -> list[tuple[int, int]]:
        """(tokens, first trained token) of each valid example of the training files."""
        return [
            pair
            for report in self.files
            if report.role == "train"
            for pair in zip(report.token_counts, report.trained_from, strict=True)
        ]

    def as_json(self) -> dict[str, Any]:
        """The shape schemas/data-check.schema.json documents."""
        epoch = self.epoch
        return {
            "valid": self.valid,
            "format": self.format,
            "tokenizer": {
                "version": self.tokenizer.version,
                "model": self.tokenizer.model,
                "exact": self.tokenizer.exact,
                "description": self.tokenizer.describe(),
            },
            "examples": self.examples,
            "valid_examples": self.valid_examples,
            "invalid_examples": sum(report.invalid_examples for report in self.files),
            "duplicates": sum(report.duplicates for report in self.files),
            "tokens": token_stats(self.token_counts()),
            "recipe": None
            if self.training is None or epoch is None
            else {**self.training.as_json(), **epoch.as_json()},
            "files": [report.as_json() for report in self.files],
            "clean": None if self.clean is None else self.clean.as_json(),
        }


def token_stats(counts: Any) -> dict[str, int | None]:
    """Total, min, median, 95th percentile (nearest rank) and max of per-example token counts."""
    ordered = sorted(counts)
    if not ordered:
        return {"total": 0, "min": None, "median": None, "p95": None, "max": None}
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) // 2
    return {
        "total": sum(ordered),
        "min": ordered[0],
        "median": median,
        "p95": ordered[max(-(-95 * len(ordered) // 100) - 1, 0)],
        "max": ordered[-1],
    }


@dataclass(frozen=True)
class CheckOptions:
    """How `check_files` checks.

    `model` (an architecture, hub id, local model folder, La Plateforme model or tokenizer version) or
    `recipe` (a recipe name, rendered with `overrides`) chooses the tokenizer; a recipe also gives the
    sequence length and batch settings. `fmt` is "chat" or "classifier" (default: the recipe's job type,
    else chat). `role` ("train" or "validation") is every file's role unless `roles` maps a path (as
    given) to its own; it selects La Plateforme's size limit, which is an error when `platform` is true
    (the default for La Plateforme recipes) and a warning otherwise. `write_clean` writes the valid
    examples, without duplicates, to a new file (one input only). `jobs` worker processes (default: the usable CPUs) check
    chunks of about `chunk_bytes` in parallel. The first `max_problems` problems of each file, in line
    order, are kept in full; the rest are counted by code.
    """

    model: str | None = None
    recipe: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    fmt: str | None = None
    role: str = "train"
    roles: Mapping[str, str] = field(default_factory=dict)
    platform: bool | None = None
    write_clean: str | Path | None = None
    jobs: int | None = None
    chunk_bytes: int = CHUNK_BYTES
    max_problems: int = MAX_PROBLEMS


def check_files(
    paths: Sequence[str | Path], options: CheckOptions | None = None, *, progress: Progress | None = None
) -> CheckReport:
    """Check JSONL training files and count their tokens exactly, as `options` say (CheckOptions).
    `progress(bytes_done, bytes_total)` is called as chunks finish."""
    options = options or CheckOptions()
    files = [str(path) for path in paths]
    if not files:
        raise CheckError("no files to check")
    if importlib.util.find_spec("mistral_common") is None:  # checked before any worker starts
        raise CheckError("exact token counts need mistral-common: pip install 'mft-recipes[data]'")
    for path in files:
        if not Path(path).is_file():
            raise CheckError(f"{path}: no such file")
    training, choice, fmt, platform = _settings(options)
    file_roles = {path: options.roles.get(path, options.role) for path in files}
    for path, file_role in file_roles.items():
        if file_role not in ROLES:
            raise CheckError(f"{path}: unknown role {file_role!r}; roles: {', '.join(ROLES)}")
    clean = None
    if options.write_clean is not None:
        if len(files) != 1:
            raise CheckError("--write-clean takes exactly one input file")
        refused = clash(files, {"--write-clean": options.write_clean})
        if refused:
            raise CheckError(refused)
        clean = CleanResult(str(options.write_clean))

    checker = _Aggregator(training, fmt, platform, options.max_problems, clean)
    # gzip files: the size of the data they hold (what La Plateforme's limits and the progress count)
    reports = [FileReport(path, file_roles[path], data_size(path)) for path in files]
    starts = [sum(report.size_bytes for report in reports[:index]) for index in range(len(reports))]
    total_bytes = sum(report.size_bytes for report in reports)
    workers = options.jobs if options.jobs is not None else usable_cpus()
    if total_bytes < 4 * options.chunk_bytes:
        workers = 1  # starting processes costs more than it saves on a small file
    readable = [index for index, report in enumerate(reports) if checker.start(report)]
    damaged: dict[int, str] = {}
    shape = training.category_path if training is not None else None
    chunks = _chunks(
        reports, readable, (fmt, choice.version, shape), options.chunk_bytes, checker.limit, damaged
    )
    with _clean_writer(clean) as clean_file:
        try:
            for chunk, result in run_chunks(chunks, workers, choice.version):
                checker.add(reports[chunk.source], result, chunk, clean_file)
                if progress is not None:
                    progress(starts[chunk.source] + chunk.offset + len(chunk.data), total_bytes)
        except FileChangedError as error:
            raise CheckError(str(error)) from error
    for index, message in damaged.items():
        reports[index].add(checker.file_problem(reports[index], "E_GZIP", message), checker.limit)
    for report in reports:
        checker.finish(report)
    if shape is not None and fmt == "chat":
        checker.check_leaves(reports, shape)
    return CheckReport(fmt, choice, reports, training, clean)


def _chunks(
    reports: list[FileReport],
    indices: list[int],
    how: tuple[str, str, CategoryPath | None],
    chunk_bytes: int,
    limit: int,
    damaged: dict[int, str],
) -> Iterator[Chunk]:
    """The chunks of the files at `indices`, in order, checked `how`: (format, tokenizer version, the
    recipe's category path); a damaged gzip stream ends its file's chunks and its message goes into
    `damaged`. Each chunk asks for as many findings in full as its file has room left for when it is
    read: results come back in file order and room only shrinks, so that is enough for the file's first
    `limit` problems whatever the chunking, and no more travels back."""
    fmt, version, shape = how
    for index in indices:
        report = reports[index]
        try:
            for chunk in read_chunks(report.file, index, fmt, version, chunk_bytes):
                yield replace(chunk, max_findings=max(limit - len(report.problems), 0), category_path=shape)
        except DamagedFileError as error:
            damaged[index] = str(error)


def other_format(path: str, fmt: str) -> tuple[str, str] | None:
    """(code, message) when the file is not JSON Lines of examples at all, told from its start."""
    found = sniff(path)
    if found.record is not None:
        stem = Path(path).name.removesuffix(".gz").removesuffix(".jsonl").removesuffix(".json")
        output = Path(path).with_name(f"{stem}.chat.jsonl")
        where = " in a JSON array" if found.array else ""
        return "E_OTHER_FORMAT", (
            f"the file holds {RECORD_FORMATS[found.record]}{where}, not {fmt} examples: convert them with "
            f"`mft-recipes data convert {path} -o {output} --from {found.record}`"
        )
    if found.array:
        stem = Path(path).name.removesuffix(".gz").removesuffix(".json")
        return "E_JSON_ARRAY", (
            "the file is a JSON array, not JSON Lines (one example per line): write each element on a "
            f"line of its own, for example `jq -c '.[]' {path} > {stem}.jsonl`"
        )
    return None


def _settings(
    options: CheckOptions,
) -> tuple[TrainingSettings | None, TokenizerChoice, str, bool]:
    """The recipe's training settings, the tokenizer, the format and whether La Plateforme's limits are
    errors: what the options say, else what the recipe implies."""
    model, recipe, fmt, platform = options.model, options.recipe, options.fmt, options.platform
    training = None
    if recipe is not None:
        try:
            training, recipe_model = recipe_settings(recipe, dict(options.overrides))
        except ValueError as error:
            raise CheckError(str(error)) from error
        model = model or recipe_model
        fmt = fmt or ("classifier" if training.job_type == "classifier" else "chat")
        platform = training.platform if platform is None else platform
    fmt = fmt or "chat"
    if fmt not in FORMATS:
        raise CheckError(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}")
    try:
        choice = choose_tokenizer(model)
    except ValueError as error:
        raise CheckError(str(error)) from error
    return training, choice, fmt, bool(platform)


# --- putting results together (in this process) -------------------------------------------------------


class _Aggregator:
    """Turns chunk results into file reports: problems with file and line, duplicates across all files,
    sequence-length warnings, size limits, and the clean copy."""

    def __init__(
        self,
        training: TrainingSettings | None,
        fmt: str,
        platform: bool,
        limit: int,
        clean: CleanResult | None,
    ) -> None:
        self.training = training
        self.fmt = fmt
        self.clean = clean
        self.platform = platform
        self.limit = limit
        # digest → where the example was first seen, packed as file number << 40 | line (an int is far
        # smaller than a tuple: this dict is most of what grows with the number of examples)
        self.seen: dict[int, int] = {}
        self.files: list[str] = []

    def start(self, report: FileReport) -> bool:
        """Whether to read the file's lines: not when it is in another format (one problem says so)."""
        self.files.append(report.file)
        found = other_format(report.file, self.fmt)
        if found is not None:
            report.add(self.file_problem(report, *found), self.limit)
            return False
        size_limit = SIZE_LIMITS[report.role]
        if report.size_bytes > size_limit:
            code = "E_FILE_TOO_LARGE" if self.platform else "W_FILE_TOO_LARGE"
            message = (
                f"{report.size_bytes:,} bytes is over La Plateforme's {size_limit:,}-byte limit for a "
                f"{report.role} file"
                + (": split it (mft-recipes data split --platform)" if report.role == "validation" else "")
            )
            report.add(self.file_problem(report, code, message), self.limit)
        return True

    def finish(self, report: FileReport) -> None:
        if report.examples == 0 and not report.problem_counts.keys() & FILE_VERDICTS:
            message = "the file has no examples" + (" (only blank lines)" if report.blank_lines else "")
            report.add(self.file_problem(report, "E_EMPTY_FILE", message), self.limit)
        why = self._nothing_trains(report) if report.role == "train" else None
        if why is not None:
            report.add(self.file_problem(report, "E_NOTHING_TRAINS", why), self.limit)

    def check_leaves(self, reports: list[FileReport], shape: CategoryPath) -> None:
        """A classifier recipe's leaves: W_RARE_LEAF for the leaves of the training files with fewer than
        `shape.min_examples` examples there, W_UNSEEN_LEAF for the leaves of a validation file that no
        training file has."""
        trained: Counter = Counter()
        for report in reports:
            if report.role == "train":
                trained.update(report.labels.get(PATH_TARGET, {}))
        rare = sorted((count, leaf) for leaf, count in trained.items() if count < shape.min_examples)
        for report in reports:
            leaves = report.labels.get(PATH_TARGET, Counter())
            if report.role == "train" and (mine := [(c, leaf) for c, leaf in rare if leaf in leaves]):
                message = (
                    f"fewer than {shape.min_examples} training examples (the recipe's min_examples) for "
                    f"{len(mine):,} of {_leaf_count(len(trained))}: {_leaves(mine)}"
                )
                report.add(self.file_problem(report, "W_RARE_LEAF", message), self.limit)
            unseen = sorted((count, leaf) for leaf, count in leaves.items() if leaf not in trained)
            if report.role == "validation" and unseen and trained:
                message = (
                    f"no training example for {_leaf_count(len(unseen))} of this file (the model cannot "
                    f"answer them): {_leaves(unseen)}"
                )
                report.add(self.file_problem(report, "W_UNSEEN_LEAF", message), self.limit)

    def _nothing_trains(self, report: FileReport) -> str | None:
        """Why this file's valid examples would train nothing, each reason counted; None when one trains."""
        settings = self.training
        pairs = list(zip(report.token_counts, report.trained_from, strict=True))
        if not pairs or any(trains(settings, tokens, first) for tokens, first in pairs):
            return None
        limit = settings.sequence_len if settings is not None else None
        trainer = "La Plateforme" if settings is not None and settings.platform else "axolotl"
        reasons: Counter = Counter()
        for tokens, first in pairs:
            fate = axolotl_fate(settings, tokens, first) if settings is not None else KEPT
            if fate == DROPPED:
                reasons[f"over sequence_len {limit}, which {trainer} drops"] += 1
            elif fate == RAISES:
                reasons[
                    f"over sequence_len {limit}, where axolotl stops (excess_length_strategy: raise)"
                ] += 1
            elif first and limit is not None and first >= limit:
                reasons[f"cut to sequence_len {limit} before their first trained token"] += 1
            else:
                reasons["with every answer at weight 0"] += 1
        parts = [f"{count:,} {reason}" for reason, count in reasons.most_common()]
        longest = f" (the longest has {max(report.token_counts):,} tokens)" if limit is not None else ""
        return (
            f"no example would train: of {plural(len(pairs), 'valid example')}, {'; '.join(parts)}{longest}"
        )

    def file_problem(self, report: FileReport, code: str, message: str) -> Problem:
        """A problem of the whole file (no line)."""
        return self._problem(report, None, code, message)

    def add(
        self, report: FileReport, result: ChunkResult, chunk: Chunk, clean_file: IO[bytes] | None
    ) -> None:
        found = [
            self._problem(report, line, finding.code, finding.message, finding.path)
            for line, finding in result.findings
        ]
        report.problem_counts.update(result.counts)
        for target, counts in result.labels.items():
            report.labels.setdefault(target, Counter()).update(counts)
        report.blank_lines += len(result.blank)
        report.examples += len(result.valid) + len(result.invalid)
        report.invalid_examples += len(result.invalid)
        report.valid_examples += len(result.valid)
        sequence_len = self.training.sequence_len if self.training is not None else None
        keep = set()
        for line, tokens, trained_from, digest in result.valid:
            report.token_counts.append(tokens)
            report.trained_from.append(trained_from)
            here = chunk.source << 40 | line
            first = self.seen.setdefault(digest, here)
            if first == here:
                keep.add(line)
            else:
                report.duplicates += 1
                first_file, first_line = self.files[first >> 40], first & (1 << 40) - 1
                where = (
                    f"line {first_line}" if first_file == report.file else f"{first_file} line {first_line}"
                )
                found.append(
                    self._problem(report, line, "W_DUPLICATE", f"the same example as {where}", count=True)
                )
            if sequence_len is not None and tokens > sequence_len:
                found.append(
                    self._problem(
                        report, line, "W_TOO_LONG", self._too_long(tokens, trained_from), count=True
                    )
                )
        room = max(self.limit - len(report.problems), 0)
        report.problems.extend(sorted(found, key=lambda problem: problem.line or 0)[:room])
        if clean_file is not None and self.clean is not None:
            self._write_clean(result, chunk, keep, clean_file, self.clean)

    def _too_long(self, tokens: int, trained_from: int) -> str:
        assert self.training is not None and self.training.sequence_len is not None
        limit = self.training.sequence_len
        over = f"{tokens} tokens is over the recipe's sequence_len {limit}"
        if self.training.platform:
            return over
        fate = {
            TRUNCATED: "truncates it",
            UNTRAINED: f"truncates it, then drops it: no trained token in its first {limit}",
            RAISES: "stops: excess_length_strategy is raise",
        }.get(axolotl_fate(self.training, tokens, trained_from), "drops it")
        return f"{over} (axolotl {fate})"

    def _problem(
        self,
        report: FileReport,
        line: int | None,
        code: str,
        message: str,
        path: tuple = (),
        *,
        count: bool = False,
    ) -> Problem:
        if count:
            report.problem_counts[code] += 1
        return Problem(
            message, path, code=code, severity=CODES[code][0], source="data", file=report.file, line=line
        )

    @staticmethod
    def _write_clean(
        result: ChunkResult, chunk: Chunk, keep: set[int], clean_file: IO[bytes], clean: CleanResult
    ) -> None:
        clean.left_out.update(code for _, code in result.invalid)
        for code, number in (
            ("W_DUPLICATE", len(result.valid) - len(keep)),
            ("W_BLANK_LINE", len(result.blank)),
        ):
            if number:
                clean.left_out[code] += number
        for offset, raw in enumerate(chunk.data.split(b"\n")):
            if chunk.first_line + offset in keep:
                clean_file.write(raw.rstrip(b"\r") + b"\n")
                clean.written += 1


def _leaf_count(number: int) -> str:
    return f"{number:,} {'leaf' if number == 1 else 'leaves'}"


def _leaves(counted: list[tuple[int, str]], shown: int = 5) -> str:
    """`'A > B > C' (1), 'A > B > D' (2), … and 3 more`: the first leaves, with their examples."""
    listed = ", ".join(f"{leaf!r} ({count:,})" for count, leaf in counted[:shown])
    return listed + (f", … and {len(counted) - shown:,} more" if len(counted) > shown else "")


def _clean_writer(clean: CleanResult | None) -> Any:
    if clean is None:
        return contextlib.nullcontext()
    from mft_recipes import atomic_writer

    return atomic_writer(clean.output, "wb")
