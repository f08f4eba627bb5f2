"""The `mft-recipes` command. Each command is a thin shell over a function of the host.

Exit codes, for every command (plugins' too): 0 ok; 1 the input was read and is invalid, or a check
failed; 2 usage: an unknown recipe, parameter or option, a bad value, a missing or unreadable path, a
folder where a file is expected, an output that cannot be written, a missing optional extra (with the
pip command), a malformed URL.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

import click

from mft_recipes import __version__
from mft_recipes.host import PluginInfo, Registry, add_plugin_commands, get_registry

if TYPE_CHECKING:
    from mft_recipes.architectures import Architectures
    from mft_recipes.recipes import Recipe
    from mft_recipes.render import RenderedDocument
    from mft_recipes.steps import Metric

EXIT_INVALID = 1  # the input was read and is invalid, or a check failed
EXIT_USAGE = 2  # the command line asks for something that cannot be done as asked


def registry() -> Registry:
    return get_registry()


# What this process's plugins registered, for plugins' commands (hooks are given what they need instead).


def get_architectures() -> Architectures:
    """The registered architectures, with `find(base_model)`."""
    return registry().architecture_view


def get_recipes() -> Mapping[str, Recipe]:
    """The registered recipes by name (a command given a name on its command line: `recipe_or_fail`)."""
    return registry().recipes


def get_metrics() -> Mapping[str, Metric]:
    """The registered evaluation metrics by name."""
    return registry().metrics


def render_document(
    recipe: Recipe, overrides: dict[str, Any], *, placeholders: bool = False, target: str | None = None
) -> RenderedDocument:
    """`recipe` rendered with `overrides` for `target` (default: its own) by this process's plugins and
    validated (`render`'s document); with `placeholders`, the required parameters the overrides leave out
    get placeholders, as `plan` renders before the data exists. Raises ParameterError or RenderError."""
    from mft_recipes.render import render_for_plan, render_recipe

    render = render_for_plan if placeholders else render_recipe
    return render(recipe, overrides, registry(), target)


class InputFile(click.Path):
    """An input file: click.Path(exists=True, dir_okay=False) that also opens it. click asks os.access,
    which says yes to root for any file and to anyone for a socket; a path that cannot be read is a usage
    error (exit 2) before any work, whoever runs the command. `-` (standard input) is allowed where
    `allow_dash` says so. Opening does not block: a FIFO (`<(...)`) is read later, as given."""

    def __init__(self, *, allow_dash: bool = False) -> None:
        super().__init__(exists=True, dir_okay=False, allow_dash=allow_dash)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        path = super().convert(value, param, ctx)
        if path != "-":
            try:
                os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
            except OSError as error:
                self.fail(f"{click.format_filename(path)!r} is not readable: {error.strerror}.", param, ctx)
        return path


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print `mft-recipes: error: MESSAGE` on stderr and exit with `code` (2, a usage error, unless told)."""
    click.echo(f"mft-recipes: error: {message}", err=True)
    sys.exit(code)


def plural(number: int, noun: str) -> str:
    """`3 examples`, `1 example`, `1 try` (a noun ending in consonant + y takes -ies)."""
    if number == 1:
        return f"{number:,} {noun}"
    many = noun[:-1] + "ies" if noun.endswith("y") and noun[-2:-1] not in tuple("aeiou") else noun + "s"
    return f"{number:,} {many}"


def print_json(data: Any) -> None:
    """Print what a `--json` option promises: `data` as indented JSON on stdout."""
    click.echo(json.dumps(data, indent=2, sort_keys=False))


def rich_console() -> Any:
    from rich.console import Console

    # Piped output is read by people in logs and CI too: give tables room instead of 80 columns.
    return Console(soft_wrap=False, width=None if sys.stdout.isatty() else 200)


def recipe_or_fail(name: str) -> Recipe:
    """The registered recipe `name`, or a usage error that suggests the closest names."""
    recipes = registry().recipes
    if name not in recipes:
        import difflib

        close = difflib.get_close_matches(name, list(recipes), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        fail(f"no recipe {name!r}.{hint} Recipes: {', '.join(sorted(recipes))} (see `mft-recipes list`)")
    return recipes[name]


def warn(message: str) -> None:
    click.echo(f"mft-recipes: warning: {message}", err=True)


def plugin_failed(plugin: PluginInfo, message: str) -> None:
    """Report a plugin's hook that raised during a command (call_each has skipped it)."""
    warn(f"plugin {plugin.name!r}: {message}")


def recipe_facts(recipe: Recipe, failed: Callable[[PluginInfo, str], None] = plugin_failed) -> dict[str, str]:
    """What plugins say about a recipe in short (the plan), merged: the first plugin to give a label keeps
    it, as with names. A plugin that raises is passed to `failed` and skipped."""
    from mft_recipes.render import render_for_plan

    facts: dict[str, str] = {}
    plugins = registry()
    arguments = {
        "recipe": recipe,
        "target": plugins.targets[recipe.target],
        "architectures": plugins.architecture_view,
        "render": lambda overrides: render_for_plan(recipe, overrides, plugins),
    }
    for _plugin, contribution in registry().call_each("recipe_facts", lambda _: arguments, failed):
        for label, text in (contribution or {}).items():
            facts.setdefault(label, text)
    return facts


class MftRecipesGroup(click.Group):
    """Lists commands in the order they were added (built-ins first, then each plugin's), not sorted."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


@click.group(cls=MftRecipesGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mft-recipes")
def cli() -> None:
    """Recipes for fine-tuning Mistral models with axolotl, DeepSpeed and La Plateforme.

    \b
    mft-recipes list
    mft-recipes show mixtral-moe
    mft-recipes render mixtral-moe dataset=train.jsonl | axolotl train /dev/stdin
    """


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (schemas/recipe-list.schema.json).")
def list_command(as_json: bool) -> None:
    """List the recipes: name, model, method, target, GPUs, summary."""
    recipes = sorted(registry().recipes.values(), key=lambda recipe: recipe.name)
    failures: dict[str, None] = {}  # a plugin failing for every recipe is reported once

    def failed(plugin: PluginInfo, message: str) -> None:
        failures[f"plugin {plugin.name!r}: {message}"] = None

    rows: list[dict[str, Any]] = [
        {
            "name": recipe.name,
            "model": recipe.model,
            "method": recipe.method,
            "target": recipe.target,
            "targets": list(recipe.renders_for),
            "gpus": recipe.hardware.gpus,
            "gpu": recipe.hardware.gpu,
            "summary": recipe.title,
            "plugin": recipe.plugin,
            "facts": recipe_facts(recipe, failed),
        }
        for recipe in recipes
    ]
    for failure in failures:
        warn(failure)
    if as_json:
        print_json(rows)
        return
    fact_labels = list(dict.fromkeys(label for row in rows for label in row["facts"]))
    header = ["name", "model", "method", "target", "GPUs", *fact_labels, "summary"]
    lines = [
        [
            row["name"],
            row["model"],
            row["method"],
            row["target"],
            recipe.hardware.short(),
            *(row["facts"].get(label, "") for label in fact_labels),
            row["summary"],
        ]
        for row, recipe in zip(rows, recipes, strict=True)
    ]
    if sys.stdout.isatty():
        print_catalogue(header, lines)
    else:  # for scripts and pagers: plain, one line per recipe, fields tab-separated
        print_tab_separated([header, *lines])


def print_tab_separated(lines: list[list[str]]) -> None:
    """Lines of fields for scripts and pagers: tab-separated, each field on one line, nothing padded."""
    for line in lines:
        click.echo("\t".join(" ".join(cell.split()) for cell in line))


def print_catalogue(header: list[str], lines: list[list[str]]) -> None:
    """A table on the terminal, one line per recipe, when the terminal is wide enough; otherwise each
    recipe's name (never cut) beside the rest, wrapped at words."""
    from rich.measure import Measurement
    from rich.table import Table
    from rich.text import Text

    console = rich_console()
    table = Table(box=None, pad_edge=False)
    for column in header:
        table.add_column(column, no_wrap=True)
    for line in lines:
        table.add_row(*map(Text, line))
    natural = Measurement.get(console, console.options.update_width(10_000), table).maximum
    if natural <= console.width:
        console.print(table)
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True, style="bold")
    grid.add_column(overflow="fold")
    for index, line in enumerate(lines):
        name, model, method, target, gpus, *facts, summary = line
        labelled = [f"{label} {fact}" for label, fact in zip(header[5:-1], facts, strict=True) if fact]
        details = [f"{model}, {method}, {target}, {gpus}", ", ".join(labelled), summary]
        grid.add_row(Text(name), Text("\n".join(detail for detail in details if detail)))
        if index < len(lines) - 1:
            grid.add_row("", "")
    console.print(grid)


@cli.command()
@click.argument("recipe_name", metavar="RECIPE")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (schemas/recipe-show.schema.json).")
def show(recipe_name: str, as_json: bool) -> None:
    """Show a recipe: description, parameters, the hardware it names and how to launch it."""
    recipe = recipe_or_fail(recipe_name)
    facts = recipe_facts(recipe)
    if as_json:
        print_json(
            {
                "name": recipe.name,
                "title": recipe.title,
                "description": recipe.description,
                "model": recipe.model,
                "method": recipe.method,
                "target": recipe.target,
                "targets": list(recipe.renders_for),
                "hardware": vars(recipe.hardware),
                "launch": recipe.launch,
                "parameters": [
                    {
                        "name": p.name,
                        "type": p.type_name,
                        "default": p.default,
                        "required": p.required,
                        "help": p.help,
                    }
                    for p in recipe.parameters.values()
                ],
                "facts": facts,
                "tags": list(recipe.tags),
                "source": recipe.source,
                "plugin": recipe.plugin,
            }
        )
        return
    # Recipe files wrap their prose at ~100 columns; the terminal (or the reader's pager) wraps it instead.
    paragraphs = [" ".join(paragraph.split()) for paragraph in recipe.description.split("\n\n")]
    header = ["name", "type", "default", "meaning"]
    rows = [
        [
            parameter.name,
            parameter.type_name,
            "(required)" if parameter.required else json.dumps(parameter.default),
            parameter.help,
        ]
        for parameter in recipe.parameters.values()
    ]
    tags = f"; tags: {', '.join(recipe.tags)}" if recipe.tags else ""
    targets = recipe_targets_line(recipe)
    plan = ", ".join(f"{label} {text}" for label, text in facts.items())
    if not sys.stdout.isatty():  # for scripts and pagers: plain lines, no padding, parameters tab-separated
        click.echo(f"{recipe.name}: {recipe.title}")
        click.echo(f"model {recipe.model}, method {recipe.method}, {targets}")
        click.echo(f"hardware: {recipe.hardware}{tags}\n")
        click.echo("\n\n".join(paragraphs) + "\n")
        click.echo("parameters (override with key=value):")
        print_tab_separated([header, *rows])
        if plan:
            click.echo(f"\nplan: {plan}")
        if recipe.launch:
            click.echo("\nlaunch:\n" + recipe.launch.rstrip("\n"))
        return
    from rich.table import Table

    console = rich_console()
    console.print(f"[bold]{recipe.name}[/bold]: {recipe.title}")
    console.print(f"model {recipe.model}, method {recipe.method}, {targets}", markup=False)
    console.print(f"hardware: {recipe.hardware}{tags}\n")
    console.print("\n\n".join(paragraphs) + "\n", markup=False)
    table = Table(title="parameters (override with key=value)", box=None, title_justify="left")
    for column in header:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if plan:
        console.print("\nplan: " + plan, markup=False)
    if recipe.launch:
        console.print("\nlaunch:\n" + recipe.launch, markup=False)


def recipe_targets_line(recipe: Recipe) -> str:
    """`target axolotl`, or for a recipe with several: `targets axolotl, trl (--target trl)`."""
    if len(recipe.renders_for) == 1:
        return f"target {recipe.target}"
    others = ", ".join(f"--target {name}" for name in recipe.renders_for[1:])
    return f"targets {', '.join(recipe.renders_for)} (render {others})"


# What an output file's extension says its format is.
FORMATS_BY_EXTENSION = {".json": "json", ".yml": "yaml", ".yaml": "yaml"}


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("recipe_name", metavar="RECIPE")
@click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["yaml", "json"]),
    help="Output format (default: that of -o FILE's extension, .json or .yml/.yaml; else the target's).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Write to FILE (atomically) instead of stdout; `-` is stdout. A target that needs more files "
    "(TRL's accelerate config) writes them beside it, as FILE's name + .SUFFIX.yaml.",
)
@click.option(
    "--target",
    "target_name",
    metavar="NAME",
    help="Render for this target (default: the recipe's own; `mft-recipes show RECIPE` lists its targets).",
)
def render(
    recipe_name: str,
    overrides: tuple[str, ...],
    fmt: str | None,
    output: str | None,
    target_name: str | None,
) -> None:
    """Render RECIPE with KEY=VALUE overrides into its target's document (validated before it is printed)."""
    from mft_recipes.output import why_unwritable, why_write_failed, write_text_atomic
    from mft_recipes.recipes import ParameterError, parse_overrides
    from mft_recipes.render import (
        RenderError,
        companion_path,
        emit,
        emit_companion,
        launch_text,
        render_recipe,
    )

    output = None if output == "-" else output
    if output:
        fmt = output_format(output, fmt)
        if reason := why_unwritable(output):
            fail(f"-o {output}: cannot write it: {reason}")
    recipe = recipe_or_fail(recipe_name)
    try:
        rendered = render_recipe(recipe, parse_overrides(overrides), registry(), target_name)
    except (ParameterError, RenderError) as error:
        fail(str(error))
    for problem in rendered.problems:
        click.echo(str(problem), err=True)
    if rendered.errors:
        fail(
            f"the rendered document is invalid ({plural(len(rendered.errors), 'error')}); nothing written",
            EXIT_INVALID,
        )
    if rendered.companions and not output:
        more = ", ".join(f"{suffix} config" for suffix in rendered.companions)
        fail(
            f"recipe {recipe.name!r} for target {rendered.target.name!r} is more than one file (the "
            f"{rendered.target.name} config, and its {more}): give -o FILE, and they are written beside it"
        )
    arguments = {"rendered": rendered, "architectures": registry().architecture_view}
    for _plugin, warnings in registry().call_each("render_warnings", lambda _: arguments, plugin_failed):
        for warning in warnings or ():
            warn(warning)
    text = emit(rendered, fmt)
    if not output:
        click.echo(text, nl=False)
        return
    files = {"": output} | {suffix: companion_path(output, suffix) for suffix in rendered.companions}
    texts = {"": text} | {suffix: emit_companion(rendered, suffix, output) for suffix in rendered.companions}
    written: list[str] = []
    for key, path in files.items():
        try:
            write_text_atomic(path, texts[key])
        except OSError as error:
            for done in written:  # all the files or none
                os.unlink(done)
            fail(f"-o {path}: {why_write_failed(path, error)}")
        written.append(path)
    click.echo(f"wrote {', '.join(written)}", err=True)
    if rendered.target.name != recipe.target:
        click.echo(f"launch: {launch_text(rendered, files)}", err=True)


def output_format(path: str, given: str | None) -> str | None:
    """The format an output file is written in: `given` (--format), else the one its extension names, else
    the target's (None) for a name with no extension; an extension that says otherwise is a usage error."""
    from pathlib import Path

    extension = Path(path).suffix.lower()
    implied = FORMATS_BY_EXTENSION.get(extension)
    if given and implied and given != implied:
        fail(f"-o {path}: its extension says {implied}, --format says {given}; make them agree")
    if given or implied or not extension:
        return given or implied
    known = ", ".join(FORMATS_BY_EXTENSION)
    fail(
        f"-o {path}: no format has the extension {extension!r} ({known}); name the file so, or give --format"
    )


@cli.command()
@click.argument("files", nargs=-1, required=True, type=InputFile(allow_dash=True))
@click.option("--kind", help="The kind of every file (default: told from each file).")
@click.option(
    "--gpus", type=click.IntRange(min=1), help="GPUs the configs will run on (enables batch checks)."
)
@click.option(
    "--gpu",
    metavar="NAME",
    help="The GPU model they will run on, from the plan's GPU table (h100-80gb, ...; see "
    "`mft-recipes plan RECIPE --gpu list`): --deep takes its compute capability, bf16, fp8 and tf32 from it.",
)
@click.option(
    "--cwd",
    type=click.Path(exists=True, file_okay=False),
    help="The directory the trainer will be launched from, which relative paths (deepspeed: ...) resolve "
    "against, as axolotl resolves them (default: the current directory).",
)
@click.option("--deep", is_flag=True, help="Also run plugins' deep checks (real trainer, real model; slow).")
@click.option(
    "--json", "as_json", is_flag=True, help="Print problems as JSON (schemas/problems.schema.json)."
)
def validate(
    files: tuple[str, ...],
    kind: str | None,
    gpus: int | None,
    gpu: str | None,
    cwd: str | None,
    deep: bool,
    as_json: bool,
) -> None:
    """Validate axolotl configs, La Plateforme job payloads or DeepSpeed configs. Exit 1 on any error."""
    from mft_recipes.documents import DocumentError, load_document
    from mft_recipes.problems import Problem
    from mft_recipes.validation import MissingExtraError, UnknownKindError, detect_kind, validate_loaded

    if kind is not None and kind not in registry().kinds:
        fail(f"unknown --kind {kind!r}; kinds: {', '.join(registry().kinds)}")
    results: list[tuple[str, str | None, list[Problem]]] = []
    for file in files:
        detected = kind
        try:
            loaded = load_document(file)
            detected = kind or detect_kind(loaded.data, registry())
            problems = validate_loaded(loaded, registry(), detected, gpus, deep, gpu=gpu, cwd=cwd)
        except (DocumentError, UnknownKindError) as error:
            problems = [Problem(str(error).removeprefix(f"{file}: "), code="unreadable", file=file)]
        except MissingExtraError as error:
            fail(str(error))
        results.append(("<stdin>" if file == "-" else file, detected, problems))
    errors = sum(problem.is_error for _, _, problems in results for problem in problems)
    if as_json:
        files_json = [
            {
                "file": file,
                "kind": detected,
                "valid": not any(problem.is_error for problem in problems),
                "problems": [problem.as_json() for problem in problems],
            }
            for file, detected, problems in results
        ]
        print_json({"valid": errors == 0, "files": files_json})
    else:
        for file, detected, problems in results:
            for problem in problems:
                click.echo(str(problem), err=True)
            status = "invalid" if any(problem.is_error for problem in problems) else "ok"
            click.echo(f"{file}: {status} ({detected or 'unknown kind'})")
    if errors:
        sys.exit(EXIT_INVALID)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON (schemas/plugin-list.schema.json).")
def plugins(as_json: bool) -> None:
    """List the loaded plugins, the distribution each comes from, and what each adds."""
    infos = list(registry().plugins.values())
    if as_json:
        print_json([vars(info) for info in infos])
        return
    for info in infos:
        origin = f"{info.distribution} {info.version}".strip() or "(registered in process)"
        click.echo(f"{info.name}  [{info.module}]  from {origin}")
        for what, names in info.added.items():
            click.echo(f"    {what}s: {', '.join(names)}")
        for error in info.errors:
            click.echo(f"    error: {error}")


def main() -> None:
    """Entry point of the console script: load plugins, add their commands, run."""
    add_plugin_commands(registry(), cli)
    for error in registry().errors:
        warn(error)
    cli(prog_name="mft-recipes")
