"""The example third-party plugin (examples/mft-recipes-example-plugin), pip-installed beside the wheel."""

from __future__ import annotations

import json

import jsonschema

from .conftest import Venv, project_schema
from .samples import SAMPLE_DATA

RECIPE = "example-mistral-7b-support"
VALIDATOR = "example-eval-without-data"


def test_its_recipe_is_listed_beside_the_builtins(with_example_plugin: Venv) -> None:
    result = with_example_plugin.mft("list", "--json")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    jsonschema.validate(list(rows.values()), project_schema("recipe-list"))
    assert rows[RECIPE]["plugin"] == "example"
    assert rows[RECIPE]["model"] == "Mistral-7B-v0.3"
    assert "mixtral-moe" in rows and rows["mixtral-moe"]["plugin"] == "catalogue"
    assert RECIPE in with_example_plugin.mft("list").stdout


def test_plugins_names_its_distribution_and_what_it_adds(with_example_plugin: Venv) -> None:
    listing = json.loads(with_example_plugin.mft("plugins", "--json").stdout)
    jsonschema.validate(listing, project_schema("plugin-list"))
    (example,) = [info for info in listing if info["name"] == "example"]
    assert example["added"] == {"recipe": [RECIPE], "validator": [VALIDATOR]}
    assert example["errors"] == []
    result = with_example_plugin.mft("plugins")
    assert result.returncode == 0, result.stderr
    block = result.stdout[result.stdout.index("example  [mft_recipes_example]") :]
    assert block.splitlines()[0] == "example  [mft_recipes_example]  from mft-recipes-example-plugin 0.1.0"
    added = [line.strip() for line in block.splitlines()[1:3]]
    assert added == [f"recipes: {RECIPE}", f"validators: {VALIDATOR}"]


def test_its_recipe_renders_and_validates(with_example_plugin: Venv) -> None:
    path = with_example_plugin.cwd / "support.yml"
    result = with_example_plugin.mft("render", RECIPE, f"dataset={SAMPLE_DATA}", "-o", str(path))
    assert result.returncode == 0, result.stderr
    check = with_example_plugin.mft("validate", str(path))
    assert (check.returncode, check.stderr) == (0, ""), check.stderr


def test_its_validator_fires_only_where_it_is_installed(with_example_plugin: Venv, installed: Venv) -> None:
    """A config that asks for evaluation with no data held out: the plugin warns; the core alone does not."""
    config = with_example_plugin.cwd / "no-eval-data.yml"
    rendered = with_example_plugin.mft(
        "render", "mistral-7b-qlora", "dataset=train.jsonl", "val_set_size=0", "-o", str(config)
    )
    assert rendered.returncode == 0, rendered.stderr
    assert (
        "warning: evals_per_epoch: evals_per_epoch is set but there is no evaluation data" in rendered.stderr
    )

    report = json.loads(with_example_plugin.mft("validate", "--json", str(config)).stdout)
    jsonschema.validate(report, project_schema("problems"))
    (problem,) = [p for p in report["files"][0]["problems"] if p["source"] == VALIDATOR]
    assert (problem["code"], problem["severity"], problem["path"]) == (
        "eval-without-data",
        "warning",
        "evals_per_epoch",
    )
    assert isinstance(problem["line"], int)
    assert report["valid"] is True, "a warning does not make the file invalid"

    without = json.loads(installed.mft("validate", "--json", str(config)).stdout)
    assert [p for p in without["files"][0]["problems"] if p["code"] == "eval-without-data"] == []
