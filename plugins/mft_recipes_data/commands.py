"""`mft-recipes data`: check, convert and split training data. Each command is a thin shell over a function."""

from __future__ import annotations

import sys
from typing import Any

import click

from mft_recipes.cli import EXIT_INVALID, fail, print_json

# Files smaller than this are checked before a progress bar would be worth drawing.
PROGRESS_MIN_BYTES = 16 << 20


@click.group()
def data() -> None:
    """Check, convert and split training data (JSONL chat or classifier examples)."""


@data.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--recipe", help="Count for this recipe: its model's tokenizer, sequence_len and batch settings."
)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a recipe parameter.")
@click.option(
    "--model", help="Model whose tokenizer counts: architecture, hub id, La Plateforme model, v1|v3|tekken."
)
@click.option(
    "--format", "fmt", type=click.Choice(["chat", "classifier"]), help="Example format (default: chat)."
)
@click.option(
    "--role",
    type=click.Choice(["train", "validation"]),
    default="train",
    show_default=True,
    help="What FILES are for (La Plateforme allows 512 MB of training and 1 MB of validation data).",
)
@click.option(
    "--validation",
    "validation_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A validation file, checked with the validation limits.",
)
@click.option(
    "--platform/--no-platform",
    default=None,
    help="Size limits are errors (default: on for La Plateforme recipes, else warnings).",
)
@click.option(
    "--write-clean",
    type=click.Path(dir_okay=False),
    metavar="OUT",
    help="Write the valid examples, without duplicates, to OUT (the input is never touched).",
)
@click.option("--jobs", type=click.IntRange(min=1), help="Worker processes (default: the usable CPUs).")
@click.option(
    "--max-problems",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="Problems listed per file; the rest are counted.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (schemas/data-check.schema.json).")
def check(
    files: tuple[str, ...],
    recipe: str | None,
    overrides: tuple[str, ...],
    model: str | None,
    fmt: str | None,
    role: str,
    validation_files: tuple[str, ...],
    platform: bool | None,
    write_clean: str | None,
    jobs: int | None,
    max_problems: int,
    as_json: bool,
) -> None:
    """Check JSONL training FILES: every rule by line, exact token counts, duplicates, size limits.

    Exit 1 when any example is invalid (warnings do not fail), 2 on a usage error.
    """
    from mft_recipes.recipes import ParameterError, parse_overrides
    from mft_recipes_data.check import CheckError, check_files
    from mft_recipes_data.report import print_report

    if overrides and recipe is None:
        fail("--set needs --recipe")
    try:
        parsed = parse_overrides(overrides)
    except ParameterError as error:
        fail(str(error))
    paths = [*files, *validation_files]
    roles = {path: "validation" for path in validation_files}
    try:
        with _ProgressBar(paths, enabled=not as_json) as progress:
            report = check_files(
                paths,
                model=model,
                recipe=recipe,
                overrides=parsed,
                fmt=fmt,
                role=role,
                roles=roles,
                platform=platform,
                write_clean=write_clean,
                jobs=jobs,
                progress=progress,
                max_problems=max_problems,
            )
    except CheckError as error:
        fail(str(error))
    if as_json:
        print_json(report.as_json())
    else:
        print_report(report)
    if not report.valid:
        sys.exit(EXIT_INVALID)


class _ProgressBar:
    """A rich progress bar on stderr while the check runs, only on a terminal and for big inputs. It is
    drawn from the first progress report on, once the check's worker processes have started: its
    refresh thread must not exist when they are forked."""

    def __init__(self, paths: list[str], *, enabled: bool) -> None:
        import os

        self.total = sum(os.path.getsize(path) for path in paths)
        self.enabled = enabled and sys.stderr.isatty() and self.total >= PROGRESS_MIN_BYTES
        self.bar: Any = None
        self.task: Any = None

    def __enter__(self) -> Any:
        return self.update if self.enabled else None

    def update(self, done: int, total: int) -> None:
        if self.bar is None:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self.bar = Progress(
                "checking",
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task("check", total=total)
        self.bar.update(self.task, completed=done)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def _template(text: str) -> Any:
    """A template from the command line, where `\\n` and `\\t` stand for a line break and a tab."""
    from mft_recipes_data.convert import Template

    return Template(text.replace("\\\\", "\0").replace("\\n", "\n").replace("\\t", "\t").replace("\0", "\\"))


@data.command()
@click.argument("source", metavar="INPUT", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "-o", "--output", required=True, type=click.Path(dir_okay=False), help="The JSONL file to write."
)
@click.option("--to", "kind", type=click.Choice(["chat", "classifier"]), default="chat", show_default=True)
@click.option("--user", help="Chat: the user message, with {column} fields, e.g. '{name}\\n{description}'.")
@click.option("--assistant", help="Chat: the assistant message, with {column} fields.")
@click.option("--system", help="Chat: a system prompt for every conversation.")
@click.option("--text", help="Classifier: the text to classify, with {column} fields.")
@click.option(
    "--label",
    "labels",
    multiple=True,
    metavar="TARGET=COLUMN",
    help="Classifier: a label target and the column it comes from (COLUMN alone: same name).",
)
@click.option(
    "--path-column", help="Classifier: a column like 'A > B > C', split into targets level1..levelN."
)
@click.option(
    "--levels", type=click.IntRange(min=1), default=3, show_default=True, help="Levels of --path-column."
)
@click.option("--separator", default=">", show_default=True, help="Separator of --path-column.")
@click.option(
    "--input-format", type=click.Choice(["csv", "jsonl"]), help="Default: from the extension (.csv/.tsv)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (schemas/data-convert.schema.json).")
def convert(
    source: str,
    output: str,
    kind: str,
    user: str | None,
    assistant: str | None,
    system: str | None,
    text: str | None,
    labels: tuple[str, ...],
    path_column: str | None,
    levels: int,
    separator: str,
    input_format: str | None,
    as_json: bool,
) -> None:
    """Turn CSV or JSONL rows in INPUT into chat or La Plateforme classifier JSONL.

    \b
    mft-recipes data convert faq.csv -o train.jsonl --user '{question}' --assistant '{answer}'
    mft-recipes data convert products.csv -o train.jsonl --to classifier \\
        --text '{name}\\n{description}' --path-column category
    """
    from mft_recipes_data.convert import ChatMapping, ClassifierMapping, ConvertError, convert_file

    mapping: ChatMapping | ClassifierMapping
    if kind == "chat" and user and assistant and not (text or labels or path_column):
        mapping = ChatMapping(_template(user), _template(assistant), system)
    elif kind == "classifier" and text and (labels or path_column) and not (user or assistant or system):
        targets = {target: column for target, _, column in (label.partition("=") for label in labels)}
        targets = {target: column or target for target, column in targets.items()}
        mapping = ClassifierMapping(_template(text), targets, path_column, separator, levels)
    elif kind == "chat":
        fail("--to chat takes --user and --assistant templates (and optionally --system)")
        return
    else:
        fail("--to classifier takes --text and at least one --label TARGET=COLUMN or --path-column")
        return
    try:
        result = convert_file(source, output, mapping, input_format=input_format)
    except (ConvertError, UnicodeDecodeError) as error:
        fail(str(error), EXIT_INVALID)
    if as_json:
        print_json(result.as_json())
        return
    for row, reason in result.skipped:
        click.echo(f"{source}: row {row}: left out: {reason}", err=True)
    more = result.skipped_count - len(result.skipped)
    if more:
        click.echo(f"{source}: {more:,} more rows left out", err=True)
    from mft_recipes_data.report import plural

    click.echo(f"wrote {result.written:,} of {plural(result.rows, 'row')} to {output}")
    for target, counts in result.labels.items():
        click.echo(f"  {target}: {plural(len(counts), 'label')}")
    click.echo(
        f"next: mft-recipes data check {output}" + (" --format classifier" if kind == "classifier" else "")
    )


@data.command()
@click.argument("source", metavar="INPUT", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--train", "train", required=True, type=click.Path(dir_okay=False), help="Training file to write."
)
@click.option(
    "--validation", required=True, type=click.Path(dir_okay=False), help="Validation file to write."
)
@click.option(
    "--fraction",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.1,
    show_default=True,
    help="Share of examples held out for validation.",
)
@click.option(
    "--count", type=click.IntRange(min=1), help="Number of validation examples (instead of --fraction)."
)
@click.option("--seed", type=int, default=0, show_default=True, help="The same seed gives the same split.")
@click.option(
    "--stratify",
    default="auto",
    show_default=True,
    help="Label target to stratify by ('auto': the first target of the labels; 'none': no stratification).",
)
@click.option("--platform", is_flag=True, help="Keep the validation file within La Plateforme's 1 MB.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (schemas/data-split.schema.json).")
def split(
    source: str,
    train: str,
    validation: str,
    fraction: float,
    count: int | None,
    seed: int,
    stratify: str,
    platform: bool,
    as_json: bool,
) -> None:
    """Split INPUT into training and validation JSONL, stratified by label, the same for the same seed."""
    from mft_recipes_data.split import SplitError, split_file

    try:
        result = split_file(
            source,
            train,
            validation,
            fraction=None if count else fraction,
            count=count,
            seed=seed,
            stratify=None if stratify == "none" else stratify,
            platform=platform,
        )
    except SplitError as error:
        fail(str(error), EXIT_INVALID)
    if as_json:
        print_json(result.as_json())
        return
    click.echo(f"{train}: {result.train_examples:,} examples, {result.train_bytes:,} bytes")
    click.echo(f"{validation}: {result.validation_examples:,} examples, {result.validation_bytes:,} bytes")
    if result.stratified_by:
        click.echo(
            f"  stratified by {result.stratified_by}: {len(result.validation_labels):,} labels in validation"
        )
    if result.limited_by_size:
        click.echo("  fewer validation examples than asked: La Plateforme's 1 MB validation limit")
