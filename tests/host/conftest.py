"""Fixtures for the host tests: the project built as a wheel and installed into fresh virtual environments.

The wheel is built once per session, from the checkout, by `python -m build` (the same way a release
is built). Each environment is made with `venv` and filled by pip from the package index (pip's cache
makes repeats fast): the core dependencies are really resolved and installed, nothing is copied from
the checkout, and commands run from a temporary folder so the checkout is never on `sys.path`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_PLUGIN = REPO / "examples" / "mft-recipes-example-plugin"
HEAVY_MODULES = ("torch", "transformers", "axolotl", "vllm", "mistralai", "mistral_common")


def checkout_recipes() -> dict[str, dict[str, Any]]:
    """The recipe files of the checkout, read as plain YAML: what the wheel must ship and the CLI list.
    A recipe that extends a parameter set of the checkout's plugins gets the set's parameters, as
    schemas/recipe.schema.json states it: the set's first, each changed key by key by the recipe's."""
    sets = {}
    for path in sorted((REPO / "plugins").glob("*/parameter_sets/*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        sets[data["name"]] = data["parameters"]
    recipes = {}
    for path in sorted((REPO / "recipes").glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if "extends" in data:
            parameters = {name: dict(spec) for name, spec in sets[data["extends"]].items()}
            for name, change in data["parameters"].items():
                parameters[name] = {**parameters.get(name, {}), **change}
            data["parameters"] = parameters
        recipes[data["name"]] = data
    return recipes


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for subprocesses: no PYTHONPATH or active venv leaking the checkout in, wide tables."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(COLUMNS="250", PYTHONDONTWRITEBYTECODE="1", **extra)
    return env


@dataclass
class Venv:
    """A virtual environment made for a test, and a way to run its programs from a temporary folder."""

    root: Path
    cwd: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    def run(
        self, program: str, *args: str, stdin: str | None = None, **env: str
    ) -> subprocess.CompletedProcess:
        executable = self.python if program == "python" else self.root / "bin" / program
        return subprocess.run(
            [str(executable), *args],
            cwd=self.cwd,
            env=clean_env(**env),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def mft(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        return self.run("mft-recipes", *args, **env)


def pip_install(venv: Path, *requirements: str) -> None:
    """Install into `venv` with the pip of this interpreter (`pip --python`), resolving dependencies."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "--disable-pip-version-check",
            *requirements,
        ],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=900,
    )
    assert result.returncode == 0, (
        f"pip install {' '.join(requirements)} failed:\n{result.stdout}\n{result.stderr}"
    )


def make_venv(root: Path, *requirements: str) -> Venv:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=120)
    pip_install(root, *requirements)
    cwd = root.parent / f"{root.name}-cwd"
    cwd.mkdir()
    return Venv(root, cwd)


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built from the checkout like a release."""
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(REPO)],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=900,
    )
    assert result.returncode == 0, f"building the wheel failed:\n{result.stdout}\n{result.stderr}"
    (built,) = out.glob("mft_recipes-*.whl")
    return built


@pytest.fixture(scope="session")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """A fresh venv holding the wheel and its core dependencies, nothing else."""
    return make_venv(tmp_path_factory.mktemp("wheel") / "venv", str(wheel))


@pytest.fixture(scope="session")
def with_example_plugin(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """A fresh venv holding the wheel and the example third-party plugin, installed from its folder."""
    return make_venv(tmp_path_factory.mktemp("plugin") / "venv", str(wheel), str(EXAMPLE_PLUGIN))


def project_schema(name: str) -> dict[str, Any]:
    """A schema of the checkout's schemas/ folder, read as plain JSON."""
    schema: dict[str, Any] = json.loads(
        (REPO / "schemas" / f"{name}.schema.json").read_text(encoding="utf-8")
    )
    return schema
