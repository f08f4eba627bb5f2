"""Every `--json` option of the CLI, plugins' commands included, names the schema in schemas/ of its shape.

The standard: every command that prints a table has `--json` with a stable shape, documented as a JSON
Schema that any tool can use. Parametrized over the commands the registry adds, so a new one is covered.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import click
import pytest

from mft_recipes import cli as cli_module
from mft_recipes.host import add_plugin_commands, get_registry

from .conftest import REPO


def all_commands(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, click.Command]]:
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from all_commands(sub, (*path, name))
    else:
        yield " ".join(path), command


def json_options() -> dict[str, click.Parameter]:
    group = click.Group(commands=dict(cli_module.cli.commands))  # a copy: plugin commands stay out of `cli`
    add_plugin_commands(get_registry(), group)
    return {
        name: parameter
        for name, command in all_commands(group)
        for parameter in command.params
        if "--json" in getattr(parameter, "opts", ())
    }


JSON_OPTIONS = json_options()


@pytest.mark.parametrize("command", list(JSON_OPTIONS))
def test_the_json_option_names_a_schema_that_exists(command: str) -> None:
    help_text = getattr(JSON_OPTIONS[command], "help", None) or ""
    match = re.search(r"schemas/([\w.-]+\.schema\.json)", help_text)
    assert match, (
        f"`mft-recipes {command} --json`: the help should name its schema, e.g. schemas/NAME.schema.json"
    )
    path = REPO / "schemas" / match.group(1)
    assert path.is_file(), f"`mft-recipes {command} --json` names {path.name}, which is not in schemas/"
    schema = json.loads(path.read_text(encoding="utf-8"))
    assert schema.get("$schema", "").startswith("https://json-schema.org/"), (
        f"{path.name} declares no $schema"
    )
