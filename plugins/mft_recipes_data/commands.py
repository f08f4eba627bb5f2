"""`mft-recipes data`: check, convert and split training data. Each command is a thin shell over a function."""

from __future__ import annotations

import sys
from typing import Any

import click

from mft_recipes import EXIT_INVALID, InputFile, fail, plural, print_json

# Files smaller than this are checked before a progress bar would be worth drawing.
PROGRESS_MIN_BYTES = 16 << 20


@click.group()
def data() -> None:
    """Check, convert and split training data (JSONL chat or classifier examples)."""


@data.command()
@click.argument("files", nargs=-1, required=True, type=InputFile())
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
    type=InputFile(),
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
    help="Problems listed per file (the first N by line, in text and --json); the rest are counted.",
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
    from mft_recipes import ParameterError, parse_overrides
    from mft_recipes_data.check import CheckError, CheckOptions, check_files
    from mft_recipes_data.report import print_report

    if overrides and recipe is None:
        fail("--set needs --recipe")
    try:
        parsed = parse_overrides(overrides)
    except ParameterError as error:
        fail(str(error))
    paths = [*files, *validation_files]
    roles = {path: "validation" for path in validation_files}
    _writable(**{"--write-clean": write_clean})
    try:
        with _ProgressBar(paths, enabled=not as_json) as progress:
            options = CheckOptions(
                model=model,
                recipe=recipe,
                overrides=parsed,
                fmt=fmt,
                role=role,
                roles=roles,
                platform=platform,
                write_clean=write_clean,
                jobs=jobs,
                max_problems=max_problems,
            )
            report = check_files(paths, options, progress=progress)
    except CheckError as error:
        fail(str(error))
    except OSError as error:
        fail(_os_error(error))
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


def _template(text: str, option: str) -> Any:
    """A template from the command line, where `\\n` and `\\t` stand for a line break and a tab."""
    from mft_recipes_data.convert import Template

    return Template.parse(_unescape(text), option)


def _unescape(text: str) -> str:
    return text.replace("\\\\", "\0").replace("\\n", "\n").replace("\\t", "\t").replace("\0", "\\")


def _encoding(ctx: click.Context, param: click.Parameter, value: str) -> str:
    import codecs

    try:
        codecs.lookup(value)
    except LookupError:
        raise click.BadParameter(f"unknown encoding {value!r} (cp1252, latin-1, utf-16, ...)") from None
    return value


def _delimiter(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    value = {"tab": "\t"}.get(value, _unescape(value))
    if len(value) != 1 or value in '"\r\n':
        raise click.BadParameter(f"one character (\\t or tab for a tab), not {value!r}")
    return value


def _writable(**outputs: str | None) -> None:
    """Refuse (exit 2) an output that cannot be written, before any work is done."""
    from mft_recipes import why_unwritable

    for option, path in outputs.items():
        reason = why_unwritable(path) if path is not None else None
        if reason:
            fail(f"{option} {path}: cannot write it: {reason}")


def _os_error(error: OSError) -> str:
    return f"{error.filename}: {error.strerror}" if error.filename else str(error)


@data.command()
@click.argument("source", metavar="INPUT", type=InputFile())
@click.option(
    "-o", "--output", required=True, type=click.Path(dir_okay=False), help="The JSONL file to write."
)
@click.option(
    "--from",
    "record_format",
    type=click.Choice(["sharegpt", "alpaca"]),
    help="INPUT holds ShareGPT or Alpaca records: make chat examples of them (no templates).",
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
    "--path-column",
    help="A category path column like 'A > B > C': classifier, split into targets level1..levelN; chat, "
    "the answer (instead of --assistant), written 'A > B > C' whatever the separator and spacing.",
)
@click.option(
    "--levels", type=click.IntRange(min=1), default=3, show_default=True, help="Levels of --path-column."
)
@click.option("--separator", default=">", show_default=True, help="Separator of --path-column.")
@click.option(
    "--input-format",
    type=click.Choice(["csv", "jsonl", "json"]),
    help="Default: csv for .csv/.tsv, json (one array) when the data starts with '[', else jsonl.",
)
@click.option(
    "--encoding",
    default="utf-8",
    show_default=True,
    callback=_encoding,
    help="The input's text encoding (cp1252 for Excel on Windows, latin-1, utf-16, ...).",
)
@click.option(
    "--delimiter",
    callback=_delimiter,
    help="CSV: the field delimiter, one character ('\\t' or 'tab'; default: tab for .tsv, else comma).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (schemas/data-convert.schema.json).")
def convert(
    source: str,
    output: str,
    record_format: str | None,
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
    encoding: str,
    delimiter: str | None,
    as_json: bool,
) -> None:
    """Turn CSV, JSONL or JSON-array records in INPUT into chat or La Plateforme classifier JSONL.

    Nothing is written unless every option fits the input and at least one row becomes an example;
    each example written passes `data check`. Exit 1 when the input cannot be read as told or no row
    becomes an example, 2 on a usage error (a malformed template, a column INPUT does not have).

    \b
    mft-recipes data convert faq.csv -o train.jsonl --user '{question}' --assistant '{answer}'
    mft-recipes data convert products.csv -o train.jsonl --to classifier \\
        --text '{name}\\n{description}' --path-column category
    mft-recipes data convert products.csv -o train.jsonl --user '{name}\\n{description}' \\
        --path-column category --system 'Answer with the category path.'
    mft-recipes data convert sharegpt.json -o train.jsonl --from sharegpt
    """
    from mft_recipes_data.convert import ConvertError, convert_file
    from mft_recipes_data.files import UsageError

    templates = {"--user": user, "--assistant": assistant, "--text": text}
    given = [
        option
        for option, value in {**templates, "--label": labels, "--path-column": path_column}.items()
        if value
    ]
    if system is not None and not system.strip():
        fail("--system is blank: give a system prompt, or leave the option out")
    try:
        mapping = _mapping(click.get_current_context().params, given)
    except UsageError as error:
        fail(str(error))
    for option, template in templates.items():
        if template is not None and "{" not in template.replace("{{", ""):
            what = {"--user": "user message", "--assistant": "assistant message", "--text": "text"}[option]
            click.echo(
                f"mft-recipes: warning: {option} {template!r} has no {{column}} field: every example gets "
                f"the same {what}",
                err=True,
            )
    _writable(**{"-o": output})
    try:
        result = convert_file(
            source, output, mapping, input_format=input_format, encoding=encoding, delimiter=delimiter
        )
    except UsageError as error:
        fail(str(error))
    except ConvertError as error:
        fail(str(error), EXIT_INVALID)
    except OSError as error:
        fail(_os_error(error))
    if as_json:
        print_json(result.as_json())
        return
    for row, reason in result.skipped:
        click.echo(f"{source}: row {row}: left out: {reason}", err=True)
    more = result.skipped_count - len(result.skipped)
    if more:
        click.echo(f"{source}: {plural(more, 'more row')} left out", err=True)
    click.echo(f"wrote {result.written:,} of {plural(result.rows, 'row')} to {output}")
    for target, counts in result.labels.items():
        click.echo(f"  {target}: {plural(len(counts), 'label')}")
    click.echo(
        f"next: mft-recipes data check {output}"
        + (" --format classifier" if mapping.kind == "classifier" else "")
    )


def _mapping(options: dict[str, Any], given: list[str]) -> Any:
    """The mapping the options describe, or a usage error naming the options that do not go together."""
    from mft_recipes_data.convert import RECORD_MAPPINGS, ChatMapping, ClassifierMapping, PathColumn

    record_format, kind, system = options["record_format"], options["kind"], options["system"]
    user, assistant, text = options["user"], options["assistant"], options["text"]
    labels, path_column = options["labels"], options["path_column"]
    if record_format is not None:
        if given:
            fail(f"--from {record_format} maps the records itself: drop {', '.join(given)}")
        if kind != "chat":
            fail(f"--from {record_format} makes chat examples: drop --to {kind}")
        return RECORD_MAPPINGS[record_format](system)
    path = PathColumn(path_column, options["separator"], options["levels"]) if path_column else None
    if kind == "chat" and user and bool(assistant) != bool(path) and not (text or labels):
        answer = path or _template(assistant, "--assistant")
        return ChatMapping(_template(user, "--user"), answer, system)
    if kind == "classifier" and text and (labels or path) and not (user or assistant or system):
        targets = {target: column for target, _, column in (label.partition("=") for label in labels)}
        targets = {target: column or target for target, column in targets.items()}
        return ClassifierMapping(_template(text, "--text"), targets, path)
    if kind == "chat":
        fail(
            "--to chat takes a --user template and either an --assistant template or a --path-column (and "
            "optionally --system), or --from sharegpt|alpaca"
        )
    fail("--to classifier takes --text and at least one --label TARGET=COLUMN or --path-column")


@data.command()
@click.argument("source", metavar="INPUT", type=InputFile())
@click.option(
    "--train", "train", required=True, type=click.Path(dir_okay=False), help="Training file to write."
)
@click.option(
    "--validation", required=True, type=click.Path(dir_okay=False), help="Validation file to write."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["chat", "classifier"]),
    default="chat",
    show_default=True,
    help="The example format INPUT is checked as before it is split.",
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
    help="Label target to stratify by ('auto': the first target of the labels; 'answer': the whole answer, "
    "a chat example's last message or a classifier example's labels together, e.g. a category path's leaf; "
    "'none': no stratification).",
)
@click.option("--platform", is_flag=True, help="Keep the validation file within La Plateforme's 1 MB.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (schemas/data-split.schema.json).")
def split(
    source: str,
    train: str,
    validation: str,
    fmt: str,
    fraction: float,
    count: int | None,
    seed: int,
    stratify: str,
    platform: bool,
    as_json: bool,
) -> None:
    """Split INPUT into training and validation JSONL, stratified by label, the same for the same seed.

    INPUT is checked first (as `data check --format FORMAT` does): exit 1 when it holds an invalid
    example, 2 on a usage error (an output that is INPUT or the other output).
    """
    from mft_recipes_data.check import CheckError
    from mft_recipes_data.files import UsageError
    from mft_recipes_data.split import SplitError, split_file

    _writable(**{"--train": train, "--validation": validation})
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
            fmt=fmt,
        )
    except (UsageError, CheckError) as error:
        fail(str(error))
    except SplitError as error:
        fail(str(error), EXIT_INVALID)
    except OSError as error:
        fail(_os_error(error))
    if as_json:
        print_json(result.as_json())
        return
    click.echo(f"{train}: {plural(result.train_examples, 'example')}, {result.train_bytes:,} bytes")
    click.echo(
        f"{validation}: {plural(result.validation_examples, 'example')}, {result.validation_bytes:,} bytes"
    )
    if result.stratified_by:
        click.echo(
            f"  stratified by {result.stratified_by}: {len(result.validation_labels):,} of "
            f"{plural(result.labels, 'label')} in validation"
        )
        if result.labels_with_one_example:
            click.echo(
                f"  {plural(result.labels_with_one_example, 'label')} with one example: in the training file only"
            )
    if result.limited_by_size:
        click.echo("  fewer validation examples than asked: La Plateforme's 1 MB validation limit")
