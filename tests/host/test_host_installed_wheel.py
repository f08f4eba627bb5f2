"""The CLI end to end, as a user gets it: the wheel installed in a fresh venv, run outside the checkout."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from .conftest import HEAVY_MODULES, REPO, Venv, checkout_recipes, project_schema
from .samples import required_overrides

RECIPES = checkout_recipes()


def hardware_of(written: dict[str, Any]) -> dict[str, Any]:
    """A recipe file's `hardware` as `show --json` spells it out: `gpus` on one machine, or `nodes` ×
    `gpus_per_node`, and both ways."""
    nodes = written.get("nodes", 1)
    per_node = written.get("gpus_per_node", written.get("gpus", 0))
    return {**written, "nodes": nodes, "gpus_per_node": per_node, "gpus": nodes * per_node}


COMMANDS = ("list", "show", "render", "validate", "plugins")
BUILTIN_PLUGINS = ("catalogue", "axolotl", "platform", "data", "plan", "vllm")


def test_wheel_ships_every_recipe_and_schema(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder, pattern in (("recipes", "*.yaml"), ("schemas", "*.schema.json")):
        for path in sorted((REPO / folder).glob(pattern)):
            assert f"mft_recipes/{folder}/{path.name}" in names, f"{folder}/{path.name} is not in the wheel"


def test_wheel_marks_the_package_typed(wheel: Path) -> None:
    """PEP 561: without py.typed, a plugin's type checker treats everything from mft_recipes as Any."""
    assert "mft_recipes/py.typed" in zipfile.ZipFile(wheel).namelist()


def test_installed_package_reads_its_data_from_the_venv(installed: Venv) -> None:
    """Recipes and schemas come from inside the installed package, not from a checkout next to it."""
    script = (
        "import json, mft_recipes\n"
        "from mft_recipes.host import get_registry\n"
        "from mft_recipes.resources import packaged_dir\n"
        "print(json.dumps([mft_recipes.__file__, str(packaged_dir('recipes')), str(packaged_dir('schemas')),\n"
        "                  *[r.source for r in get_registry().recipes.values()]]))\n"
    )
    result = installed.run("python", "-c", script)
    assert result.returncode == 0, result.stderr
    paths = [Path(path).resolve() for path in json.loads(result.stdout)]
    for path in paths:
        assert path.is_relative_to(installed.root.resolve()), f"{path} is outside the venv"
    assert len(paths) == 3 + len(RECIPES)


def test_pip_installed_the_core_dependencies_from_the_wheel_metadata(installed: Venv) -> None:
    """The venv has no system site-packages, so these can only come from the wheel's Requires-Dist."""
    script = (
        "import json\n"
        "from importlib import metadata\n"
        "names = ['pluggy', 'click', 'jsonschema', 'PyYAML', 'rich']\n"
        "print(json.dumps({n: str(metadata.distribution(n).locate_file('')) for n in names}))\n"
    )
    result = installed.run("python", "-c", script)
    assert result.returncode == 0, result.stderr
    for name, location in json.loads(result.stdout).items():
        assert Path(location).resolve().is_relative_to(installed.root.resolve()), f"{name} is not in the venv"


@pytest.mark.parametrize(
    "program", [["mft-recipes"], ["python", "-m", "mft_recipes"]], ids=["script", "module"]
)
def test_help_lists_the_commands(installed: Venv, program: list[str]) -> None:
    result = installed.run(*program, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: mft-recipes" in result.stdout
    for command in COMMANDS:
        assert f"  {command}" in result.stdout
    assert result.stderr == "", "a clean install must load every built-in plugin without a warning"


def test_list_shows_every_recipe(installed: Venv) -> None:
    table = installed.mft("list")
    assert table.returncode == 0, table.stderr
    for name, recipe in RECIPES.items():
        line = next((line for line in table.stdout.splitlines() if line.startswith(name + "\t")), None)
        assert line is not None, f"{name} missing from `list`:\n{table.stdout}"
        assert recipe["model"] in line and recipe["target"] in line

    as_json = installed.mft("list", "--json")
    assert as_json.returncode == 0, as_json.stderr
    rows = json.loads(as_json.stdout)
    jsonschema.validate(rows, project_schema("recipe-list"))
    assert [row["name"] for row in rows] == sorted(RECIPES)
    for row in rows:
        recipe = RECIPES[row["name"]]
        assert (row["model"], row["method"], row["target"], row["summary"]) == (
            recipe["model"],
            recipe["method"],
            recipe["target"],
            recipe["title"],
        )
        hardware = hardware_of(recipe["hardware"])
        assert [row[key] for key in ("gpus", "nodes", "gpu")] == [
            hardware[key] for key in ("gpus", "nodes", "gpu")
        ]


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_show_describes_the_recipe(installed: Venv, name: str) -> None:
    recipe = RECIPES[name]
    result = installed.mft("show", name)
    assert result.returncode == 0, result.stderr
    assert recipe["model"] in result.stdout
    for parameter in recipe["parameters"]:
        assert parameter in result.stdout, f"`show {name}` does not list parameter {parameter}"
    as_json = json.loads(installed.mft("show", name, "--json").stdout)
    jsonschema.validate(as_json, project_schema("recipe-show"))
    assert [p["name"] for p in as_json["parameters"]] == list(recipe["parameters"])
    assert as_json["hardware"] == hardware_of(recipe["hardware"])


def test_render_every_recipe_then_validate_the_files(installed: Venv) -> None:
    rendered = []
    for name, recipe in RECIPES.items():
        suffix = "json" if recipe["target"] == "la-plateforme" else "yml"
        path = installed.cwd / f"{name}.{suffix}"
        result = installed.mft("render", name, *required_overrides(recipe["parameters"]), "-o", str(path))
        assert result.returncode == 0, f"render {name}:\n{result.stderr}"
        assert result.stdout == ""
        assert isinstance(yaml.safe_load(path.read_text(encoding="utf-8")), dict)
        rendered.append(str(path))

    result = installed.mft("validate", *rendered)
    assert result.returncode == 0, result.stderr
    assert [line.rsplit(": ", 1)[-1].split()[0] for line in result.stdout.splitlines()] == ["ok"] * len(
        RECIPES
    )

    as_json = installed.mft("validate", "--json", *rendered)
    report = json.loads(as_json.stdout)
    jsonschema.validate(report, project_schema("problems"))
    assert report["valid"] is True
    assert [file["file"] for file in report["files"]] == rendered


def test_render_to_stdout_pipes_into_validate(installed: Venv) -> None:
    """The README's pipe: what render prints is a whole document that `validate -` accepts."""
    words = required_overrides(RECIPES["mistral-7b-qlora"]["parameters"])
    rendered = installed.mft("render", "mistral-7b-qlora", *words)
    assert rendered.returncode == 0, rendered.stderr
    assert rendered.stdout.startswith("# Rendered by mft-recipes")
    result = installed.run("mft-recipes", "validate", "-", stdin=rendered.stdout)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(": ok (axolotl)")


def test_plugins_lists_the_builtins_with_their_distribution(installed: Venv) -> None:
    result = installed.mft("plugins")
    assert result.returncode == 0, result.stderr
    for name in BUILTIN_PLUGINS:
        assert f"{name}  [mft_recipes_{name}]  from mft-recipes " in result.stdout
    assert "error" not in result.stdout
    listing = json.loads(installed.mft("plugins", "--json").stdout)
    jsonschema.validate(listing, project_schema("plugin-list"))
    plugins = {info["name"]: info for info in listing}
    assert set(BUILTIN_PLUGINS) <= set(plugins)
    assert sorted(plugins["catalogue"]["added"]["recipe"]) == sorted(RECIPES)


SENTINEL = '"""A stand-in for {name}: it exists only so that the test sees whether anything imports it."""\n'
PROBE = """\
import json, runpy, sys
sys.argv = ["mft-recipes", *sys.argv[1:]]
code = 0
try:
    runpy.run_module("mft_recipes", run_name="__main__")
except SystemExit as exit:
    code = exit.code
heavy = sorted(name for name in sys.modules if name.partition(".")[0] in {heavy!r})
print(json.dumps({{"code": code, "heavy": heavy}}), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "command",
    [["--help"], ["list"], ["show", "mixtral-moe"], ["render"], ["validate"]],
    ids=["help", "list", "show", "render", "validate"],
)
def test_light_commands_import_no_heavy_library(installed: Venv, tmp_path: Path, command: list[str]) -> None:
    """`--help`, `list`, `show`, `render` (every recipe) and `validate` (without --deep) must not import
    torch, transformers, axolotl, vllm, mistralai or mistral_common.

    None of them is installed in this venv, so each is replaced by an empty stand-in package on
    PYTHONPATH: an import would then succeed and leave the module in sys.modules, which the probe
    reports after the command ran (a guarded `try: import torch` cannot hide it).
    """
    sentinels = tmp_path / "sentinels"
    for name in HEAVY_MODULES:
        (sentinels / name).mkdir(parents=True)
        (sentinels / name / "__init__.py").write_text(SENTINEL.format(name=name))
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE.format(heavy=HEAVY_MODULES))
    outputs = [
        str(tmp_path / f"{name}.{'json' if recipe['target'] == 'la-plateforme' else 'yml'}")
        for name, recipe in RECIPES.items()
    ]
    renders = [
        ["render", name, *required_overrides(recipe["parameters"]), "-o", output]
        for (name, recipe), output in zip(RECIPES.items(), outputs, strict=True)
    ]
    runs = {"render": renders, "validate": [["validate", *outputs]]}.get(command[0], [command])
    if command == ["validate"]:
        assert all(installed.mft(*args).returncode == 0 for args in renders)
    for args in runs:
        result = installed.run("python", str(probe), *args, PYTHONPATH=str(sentinels))
        outcome = json.loads(result.stderr.splitlines()[-1])
        assert outcome["code"] in (0, None), f"{args}: {result.stderr}"
        assert outcome["heavy"] == [], f"`mft-recipes {' '.join(args)}` imported {outcome['heavy']}"
