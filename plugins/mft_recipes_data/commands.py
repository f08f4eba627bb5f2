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
        with _progress(paths, enabled=not as_json) as progress:
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


class _progress:
    """A rich progress bar on stderr while the check runs, only on a terminal and for big inputs."""

    def __init__(self, paths: list[str], *, enabled: bool) -> None:
        import os

        self.total = sum(os.path.getsize(path) for path in paths)
        self.bar: Any = None
        if enabled and sys.stderr.isatty() and self.total >= PROGRESS_MIN_BYTES:
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

    def __enter__(self) -> Any:
        if self.bar is None:
            return None
        self.bar.start()
        task = self.bar.add_task("check", total=self.total)
        return lambda done, total: self.bar.update(task, completed=done)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
