"""How every command refuses bad input, checked the same way in each plugin's tests: the exit code of the
contract (1 the input was read and is invalid, 2 usage), a message that names what is wrong, and never
a traceback. `mft` runs any command, plugins' included, as `mft-recipes` would."""

from __future__ import annotations

import stat
from functools import cache
from pathlib import Path

import click
from click.testing import CliRunner, Result


def assert_refused(result: Result, code: int, *needles: str) -> None:
    """Exit `code`, a message on stderr holding each needle, no traceback."""
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.stderr, f"{needle!r} not in: {result.stderr}"


@cache
def whole_cli() -> click.Group:
    """The host's commands and every plugin's, in a copy of the CLI group (the host's stays as it is)."""
    from mft_recipes import cli as cli_module
    from mft_recipes.host import add_plugin_commands, get_registry

    group = click.Group("mft-recipes", commands=dict(cli_module.cli.commands))
    add_plugin_commands(get_registry(), group)
    return group


def mft(*args: str, env: dict[str, str] | None = None) -> Result:
    """`mft-recipes ARGS`, in process."""
    return CliRunner().invoke(whole_cli(), list(args), env=env)


def snapshot(folder: Path) -> dict[str, tuple[int, bytes | None]]:
    """Every path under `folder` with its mode and, for a readable file, its bytes: equal before and after
    a refused command when it made, changed or left half-written no file."""
    found = {}
    for path in sorted(folder.rglob("*")):
        mode = path.lstat().st_mode
        readable = stat.S_ISREG(mode) and mode & 0o444
        found[str(path.relative_to(folder))] = (mode, path.read_bytes() if readable else None)
    return found
