"""Splitting a JSONL file into training and validation files: deterministic for a seed, stratified by
label, and within La Plateforme's 1 MB validation limit when asked.

Every line gets a place in one stratified order: within its stratum (its label, its whole answer, or
one stratum when there are no labels) lines are shuffled with the seed, and a line's key is its rank
divided by the stratum's size. Validation takes the lowest keys, so any number of validation examples is
spread over the labels in proportion to their counts, rounded up: each stratum's first line has key 0, so
every label with two examples or more reaches the validation file as soon as it holds as many examples
as there are such labels (a classifier's rare leaves are evaluated too). A label with one example has key
1 and stays in the training file: a leaf the model never saw in training cannot be learned. Under a byte
limit validation takes the longest prefix of the order that fits.
Two passes over the file (one to read labels and sizes, one to write) keep memory to a few numbers per line.
The training file keeps one example at least that trains (not every answer at weight 0): validation passes
over the last one.

The input is checked first, by `data check`'s own rules and tokenizer: a split of invalid examples would
spread them over both files, and one that exits 0 must leave two files the check accepts.
"""

from __future__ import annotations

import json
import random
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mft_recipes import plural
from mft_recipes_data.check import SIZE_LIMITS, CheckOptions, CheckReport, check_files
from mft_recipes_data.files import UsageError, clash, open_data


class SplitError(ValueError):
    """A split that cannot be made from this input: invalid examples, too few of them."""


@dataclass
class SplitResult:
    """What went where."""

    train: str
    validation: str
    seed: int
    stratified_by: str | None
    train_examples: int = 0
    validation_examples: int = 0
    train_bytes: int = 0
    validation_bytes: int = 0
    validation_labels: dict[str, int] = field(default_factory=dict)
    labels: int = 0
    labels_with_one_example: int = 0
    limited_by_size: bool = False

    def as_json(self) -> dict[str, Any]:
        return dict(vars(self))


def split_file(
    source: str | Path,
    train: str | Path,
    validation: str | Path,
    *,
    fraction: float | None = 0.1,
    count: int | None = None,
    seed: int = 0,
    stratify: str | None = "auto",
    max_validation_bytes: int | None = None,
    platform: bool = False,
    fmt: str = "chat",
    jobs: int | None = None,
) -> SplitResult:
    """Split `source` into `train` and `validation` (both written atomically).

    The validation set has `count` examples, or `fraction` of them; `stratify` names the label target to
    stratify by ("auto": the first target of the first labelled example; "answer": the whole answer, a
    chat example's last assistant message or a classifier example's labels together, such as a
    category path's leaf; None: no stratification).
    `platform` caps the validation file at La Plateforme's 1 MB (or `max_validation_bytes`). The input
    must pass `data check` as `fmt` examples (checked with `jobs` workers).
    """
    from mft_recipes import atomic_writer

    source = Path(source)
    refused = clash([source], {"--train": train, "--validation": validation})
    if refused:
        raise UsageError(refused)
    if count is None and (fraction is None or not 0 < fraction < 1):
        raise UsageError(f"the validation fraction must be between 0 and 1, got {fraction}")
    byte_limit = max_validation_bytes or (SIZE_LIMITS["validation"] if platform else None)
    report = check_files([source], CheckOptions(fmt=fmt, jobs=jobs, max_problems=100))
    _refuse_invalid(report, fmt)
    # Per example (every line is a valid one now): where its first trained token is, 0 when it has none.
    trained_from = report.files[0].trained_from

    strata = _read_strata(source, stratify)
    sizes = strata.sizes
    lines = len(sizes)
    wanted = count if count is not None else round(lines * (fraction or 0))
    if not 0 < wanted < lines:
        raise SplitError(f"{source}: cannot hold out {wanted} of {plural(lines, 'example')} for validation")
    order = _stratified_order(strata.numbers, seed)
    chosen = bytearray(lines)
    used = taken = 0
    trainable = sum(1 for first in trained_from if first)
    result = SplitResult(str(train), str(validation), seed, strata.target)
    for index in order:
        if taken == wanted:
            break
        if trained_from[index] and trainable == 1:
            continue  # the last example that trains stays in the training file
        if byte_limit is not None and used + sizes[index] > byte_limit:
            result.limited_by_size = True
            break
        chosen[index] = 1
        used += sizes[index]
        taken += 1
        trainable -= bool(trained_from[index])
    if taken == 0:
        raise SplitError(f"no example fits in a {byte_limit:,}-byte validation file")
    names = {number: name for name, number in strata.names.items()} if strata.target is not None else None
    if names is not None:
        result.labels = len(names)
        result.labels_with_one_example = sum(1 for count in Counter(strata.numbers).values() if count == 1)
    with (
        atomic_writer(train, "wb") as train_file,
        atomic_writer(validation, "wb") as validation_file,
        open_data(source) as file,
    ):
        index = 0
        for raw in file:
            if not raw.strip():
                continue
            line = raw.rstrip(b"\r\n") + b"\n"
            if chosen[index]:
                validation_file.write(line)
                result.validation_examples += 1
                result.validation_bytes += len(line)
                if names is not None:
                    name = names[strata.numbers[index]]
                    result.validation_labels[name] = result.validation_labels.get(name, 0) + 1
            else:
                train_file.write(line)
                result.train_examples += 1
                result.train_bytes += len(line)
            index += 1
    return result


def _refuse_invalid(report: CheckReport, fmt: str) -> None:
    """A SplitError saying what `data check` refuses in the input, and what to do."""
    if report.valid:
        return
    (file,) = report.files
    first = next((str(problem) for problem in file.problems if problem.is_error), "it is not valid")
    invalid = (
        f"{plural(file.invalid_examples, 'invalid example')}, the first: " if file.invalid_examples else ""
    )
    hint = (
        " (classifier examples? --format classifier)"
        if fmt == "chat" and "E_NO_MESSAGES" in file.problem_counts
        else ""
    )
    raise SplitError(
        f"{file.file}: {invalid}{first}{hint}; a split would spread what `data check` refuses over both "
        f"files: run `mft-recipes data check {file.file} --write-clean CLEAN.jsonl` and split the clean copy"
    )


@dataclass
class _Strata:
    """Per non-blank line of the input: its stratum number and its size in bytes once written."""

    target: str | None
    numbers: array = field(default_factory=lambda: array("l"))
    sizes: array = field(default_factory=lambda: array("q"))
    names: dict[str, int] = field(default_factory=dict)


_NO_LABEL = "(no label)"
ANSWER = "answer"  # --stratify answer: the whole answer is the stratum


def _read_strata(source: Path, stratify: str | None) -> _Strata:
    strata = _Strata(None if stratify == "auto" else stratify)
    targets: set[str] = set()
    with open_data(source) as file:
        for raw in file:
            if not raw.strip():
                continue
            strata.sizes.append(len(raw.rstrip(b"\r\n")) + 1)
            label = _NO_LABEL
            if stratify == ANSWER:
                label = _answer(raw)
            elif stratify is not None:
                labels = _labels(raw)
                targets.update(labels)
                if strata.target is None and labels:
                    strata.target = next(iter(labels))
                value = labels.get(strata.target) if strata.target is not None else None
                if value is not None:
                    label = json.dumps(value, ensure_ascii=False) if isinstance(value, list) else str(value)
            strata.numbers.append(strata.names.setdefault(label, len(strata.names)))
    if stratify not in (None, "auto", ANSWER) and _NO_LABEL in strata.names and len(strata.names) == 1:
        known = (
            f"; the targets are {', '.join(map(repr, sorted(targets)))}"
            if targets
            else "; no example has labels"
        )
        raise UsageError(f"{source}: no example has labels for target {stratify!r} (--stratify){known}")
    return strata


def _labels(raw: bytes) -> dict[str, Any]:
    example = _example(raw)
    labels = example.get("labels")
    return labels if isinstance(labels, dict) else {}


def _answer(raw: bytes) -> str:
    """A line's whole answer: a classifier example's labels together, a chat example's last message."""
    example = _example(raw)
    if "labels" in example:
        return json.dumps(example["labels"], ensure_ascii=False)
    messages = example.get("messages")
    last = messages[-1] if isinstance(messages, list) and messages else None
    return str(last.get("content")) if isinstance(last, dict) else _NO_LABEL


def _example(raw: bytes) -> dict[str, Any]:
    try:
        example = json.loads(raw)
    except ValueError:
        return {}
    return example if isinstance(example, dict) else {}


def _stratified_order(strata: array, seed: int) -> list[int]:
    """Line indices in the order validation takes them (see the module docstring)."""
    rng = random.Random(seed)
    members: dict[int, list[int]] = {}
    for index, stratum in enumerate(strata):
        members.setdefault(stratum, []).append(index)
    keyed: list[tuple[float, float, int]] = []
    for stratum in sorted(members):
        indices = members[stratum]
        rng.shuffle(indices)
        size = len(indices)
        if size == 1:
            keyed.append((1.0, rng.random(), indices[0]))
            continue
        keyed.extend((rank / size, rng.random(), index) for rank, index in enumerate(indices))
    keyed.sort()
    return [index for _, _, index in keyed]
