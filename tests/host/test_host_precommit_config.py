"""The pre-commit config for working on this repository (.pre-commit-config.yaml) runs what `nox -s lint`
runs, at the versions noxfile.py pins."""

from __future__ import annotations

import shlex
import tomllib

import yaml

from tests.truth.proof_table import pinned

from .conftest import REPO

CONFIG = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
HOOKS = {hook["id"]: (repo, hook) for repo in CONFIG["repos"] for hook in repo["hooks"]}


def test_ruff_runs_the_version_the_noxfile_pins() -> None:
    repo, _ = HOOKS["ruff"]
    assert repo["repo"] == "https://github.com/astral-sh/ruff-pre-commit"
    assert repo["rev"] == f"v{pinned('RUFF')}", "set rev to noxfile.py's RUFF"
    assert set(HOOKS) >= {"ruff", "ruff-format"}


def test_mypy_checks_what_pyproject_names() -> None:
    _, hook = HOOKS["mypy"]
    assert (hook["entry"], hook["pass_filenames"]) == ("mypy", False), "files come from [tool.mypy]"
    mypy = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    assert {"mft_recipes", "plugins", "tests"} <= set(mypy["files"])


def test_the_recipe_hook_runs_the_every_recipe_test_on_recipe_changes() -> None:
    _, hook = HOOKS["recipes-render-and-validate"]
    test_file = shlex.split(hook["entry"])[-1]
    assert (REPO / test_file).is_file()
    assert hook["files"].startswith("^(recipes|")
