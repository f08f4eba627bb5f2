"""The CLI's promises: overrides typed and checked, the messages and exit codes (0 ok, 1 invalid document,
2 usage), atomic `-o`, and JSON outputs that match their schemas in schemas/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner, Result

from mft_recipes import cli as cli_module
from mft_recipes.hookspecs import hookimpl
from mft_recipes.host import build_registry
from mft_recipes.problems import Problem
from mft_recipes.validation import Validator
from tests.refusals import assert_refused

from .conftest import project_schema

RECIPE = "mistral-7b-qlora"


def mft(*args: str) -> Result:
    return CliRunner().invoke(cli_module.cli, list(args))


def render(*overrides: str) -> dict[str, Any]:
    result = mft("render", RECIPE, *overrides)
    assert result.exit_code == 0, result.stderr
    document: dict[str, Any] = yaml.safe_load(result.stdout)
    return document


def test_overrides_are_read_as_yaml_scalars_and_typed_by_the_parameter() -> None:
    document = render(
        "dataset=2024", "lora_r=64", "learning_rate=1e-4", "num_epochs=1.5", "wandb_project=support-bot"
    )
    assert document["datasets"][0]["path"] == "2024", "a string parameter keeps `2024` a string"
    assert document["lora_r"] == 64 and isinstance(document["lora_r"], int)
    assert document["learning_rate"] == 0.0001, (
        "1e-4 (a string to YAML 1.1) is a number for a number parameter"
    )
    assert document["num_epochs"] == 1.5
    assert document["wandb_project"] == "support-bot"


def test_an_unset_optional_parameter_leaves_no_key() -> None:
    assert "wandb_project" not in render("dataset=train.jsonl")


USAGE_ERRORS = {
    "unknown key": (
        ["dataset=t.jsonl", "lora_rank=8"],
        f"recipe '{RECIPE}' has no parameter 'lora_rank'; its parameters are: base_model, dataset,",
    ),
    "wrong type": (
        ["dataset=t.jsonl", "lora_r=abc"],
        "lora_r='abc': expected an integer, got 'abc'",
    ),
    "float for an integer": (["dataset=t.jsonl", "lora_r=8.5"], "lora_r=8.5: expected an integer, got 8.5"),
    "below the minimum": (["dataset=t.jsonl", "lora_r=0"], "lora_r=0: expected a number >= 1, got 0"),
    "not a number": (["dataset=t.jsonl", "learning_rate=fast"], "learning_rate='fast'"),
    "above the maximum": (
        ["dataset=t.jsonl", "learning_rate=0.5"],
        "learning_rate=0.5: expected a number <= 0.01, got 0.5",
    ),
    "required missing": ([], "dataset is required: Training data"),
    "not key=value": (["dataset=t.jsonl", "lora_r"], "expected key=value, got 'lora_r'"),
    "an option render lacks": (["dataset=t.jsonl", "--dry-run"], "expected key=value, got '--dry-run'"),
}


@pytest.mark.parametrize("words, message", USAGE_ERRORS.values(), ids=USAGE_ERRORS.keys())
def test_bad_overrides_are_usage_errors_that_say_what_is_wrong(words: list[str], message: str) -> None:
    result = mft("render", RECIPE, *words)
    assert result.exit_code == 2
    assert result.stdout == "", "nothing is printed when the overrides are wrong"
    assert result.stderr.startswith("mft-recipes: error: ")
    assert message in result.stderr


def test_every_problem_of_the_overrides_is_reported_at_once() -> None:
    result = mft("render", RECIPE, "lora_r=0", "learning_rate=fast")
    assert result.exit_code == 2
    for part in ("(give it as dataset=...)", "lora_r=0:", "learning_rate='fast':"):
        assert part in result.stderr


def test_an_unknown_recipe_suggests_the_close_names() -> None:
    result = mft("render", "mistral-7b-qlor", "dataset=t.jsonl")
    assert result.exit_code == 2
    assert "no recipe 'mistral-7b-qlor'. Did you mean mistral-7b-qlora" in result.stderr
    assert "see `mft-recipes list`" in result.stderr


@pytest.mark.parametrize("args", [["list", "--bogus"], ["show"], ["validate"], ["render"], ["nonsense"]])
def test_click_usage_errors_exit_2(args: list[str]) -> None:
    assert mft(*args).exit_code == 2


def test_render_output_file_is_written_whole(tmp_path: Path) -> None:
    target = tmp_path / "configs" / "qlora.yml"
    result = mft("render", RECIPE, "dataset=train.jsonl", "-o", str(target))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert yaml.safe_load(target.read_text())["datasets"][0]["path"] == "train.jsonl"
    assert [path.name for path in target.parent.iterdir()] == ["qlora.yml"], "no temporary file left behind"


def test_a_failed_render_leaves_an_existing_output_file_untouched(tmp_path: Path) -> None:
    target = tmp_path / "qlora.yml"
    target.write_text("# the config that worked yesterday\n")
    result = mft("render", RECIPE, "lora_r=0", "dataset=train.jsonl", "-o", str(target))
    assert result.exit_code == 2
    assert target.read_text() == "# the config that worked yesterday\n"
    assert [path.name for path in tmp_path.iterdir()] == ["qlora.yml"]


@pytest.mark.parametrize(
    "name, fmt",
    [("qlora.json", "json"), ("qlora.JSON", "json"), ("qlora.yml", "yaml"), ("qlora.yaml", "yaml")],
)
def test_render_output_format_follows_the_extension(tmp_path: Path, name: str, fmt: str) -> None:
    target = tmp_path / name
    result = mft("render", RECIPE, "dataset=train.jsonl", "-o", str(target))
    assert result.exit_code == 0, result.stderr
    text = target.read_text()
    if fmt == "json":
        assert json.loads(text)["datasets"][0]["path"] == "train.jsonl"
    else:
        assert text.startswith("# Rendered by mft-recipes") and yaml.safe_load(text)["adapter"] == "qlora"


def test_render_format_option_wins_over_an_extension_that_says_nothing(tmp_path: Path) -> None:
    target = tmp_path / "qlora.txt"
    assert mft("render", RECIPE, "dataset=t.jsonl", "--format", "json", "-o", str(target)).exit_code == 0
    assert json.loads(target.read_text())["adapter"] == "qlora"


def test_render_without_an_extension_writes_the_target_format(tmp_path: Path) -> None:
    target = tmp_path / "payload"
    assert mft("render", "platform-mistral-7b", "training_file=file-1", "-o", str(target)).exit_code == 0
    assert json.loads(target.read_text())["training_files"] == [{"file_id": "file-1", "weight": 1}]


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("qlora.yml", ["--format", "json"], "its extension says yaml, --format says json"),
        ("qlora.json", ["--format", "yaml"], "its extension says json, --format says yaml"),
        ("qlora.txt", [], "no format has the extension '.txt' (.json, .yml, .yaml)"),
    ],
)
def test_render_refuses_an_output_name_that_contradicts_or_names_no_format(
    tmp_path: Path, name: str, options: list[str], message: str
) -> None:
    target = tmp_path / name
    result = mft("render", RECIPE, "dataset=t.jsonl", *options, "-o", str(target))
    assert_refused(result, 2, f"-o {target}: {message}")
    assert list(tmp_path.iterdir()) == []


def test_render_output_dash_is_stdout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = mft("render", RECIPE, "dataset=t.jsonl", "--format", "json", "-o", "-")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["adapter"] == "qlora"
    assert list(tmp_path.iterdir()) == []


class StrictLearningRate:
    """A plugin whose validator refuses learning rates above 1e-3: a rendered document that is invalid."""

    @staticmethod
    def check(document: Any, context: Any) -> list[Problem]:
        if document.get("learning_rate", 0) > 1e-3:
            return [Problem("too high for this team", ("learning_rate",), code="lr-too-high")]
        return []

    @hookimpl
    def register_validators(self, register: Any) -> None:
        register(Validator("strict-lr", ("axolotl",), self.check))


def test_a_rendered_document_that_fails_validation_exits_1_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = build_registry(extra_plugins=[("strict", StrictLearningRate())])
    monkeypatch.setattr(cli_module, "get_registry", lambda: registry)
    target = tmp_path / "qlora.yml"
    result = mft("render", RECIPE, "dataset=t.jsonl", "learning_rate=0.005", "-o", str(target))
    assert result.exit_code == 1
    assert "error: learning_rate: too high for this team [lr-too-high]" in result.stderr
    assert "the rendered document is invalid (1 error); nothing written" in result.stderr
    assert list(tmp_path.iterdir()) == []
    assert mft("render", RECIPE, "dataset=t.jsonl", "-o", str(target)).exit_code == 0


@pytest.fixture
def configs(tmp_path: Path) -> dict[str, Path]:
    """A valid rendered config, one with a validator error, one with a YAML syntax error, and one of no kind."""
    good = tmp_path / "good.yml"
    assert mft("render", RECIPE, "dataset=train.jsonl", "-o", str(good)).exit_code == 0
    no_4bit = tmp_path / "no-4bit.yml"
    no_4bit.write_text(good.read_text().replace("load_in_4bit: true", "load_in_4bit: false"))
    syntax = tmp_path / "syntax.yml"
    syntax.write_text("base_model: mistralai/Mistral-7B-v0.3\nadapter: [qlora\n")
    unknown = tmp_path / "unknown.yml"
    unknown.write_text("- just\n- a list\n")
    return {"good": good, "no_4bit": no_4bit, "syntax": syntax, "unknown": unknown}


def test_validate_exit_codes_and_messages(configs: dict[str, Path], tmp_path: Path) -> None:
    good = mft("validate", str(configs["good"]))
    assert (good.exit_code, good.stdout) == (0, f"{configs['good']}: ok (axolotl)\n")

    bad = mft("validate", str(configs["good"]), str(configs["no_4bit"]))
    assert bad.exit_code == 1
    assert f"{configs['no_4bit']}: invalid (axolotl)" in bad.stdout
    assert f"{configs['good']}: ok (axolotl)" in bad.stdout
    line = configs["no_4bit"].read_text().splitlines().index("adapter: qlora") + 1
    assert f"{configs['no_4bit']}:{line}: error: adapter: " in bad.stderr

    syntax = mft("validate", str(configs["syntax"]))
    assert syntax.exit_code == 1
    assert f"{configs['syntax']}:3: not valid YAML or JSON" in syntax.stderr

    unknown = mft("validate", str(configs["unknown"]))
    assert unknown.exit_code == 1
    assert "cannot tell what kind of document this is; pass --kind" in unknown.stderr

    missing = mft("validate", str(tmp_path / "nope.yml"))
    assert_refused(missing, 2, f"'{tmp_path / 'nope.yml'}' does not exist")

    assert mft("validate", "--kind", "nonsense", str(configs["good"])).exit_code == 2


def test_validate_json_matches_its_schema(configs: dict[str, Path]) -> None:
    result = mft("validate", "--json", *map(str, configs.values()))
    assert result.exit_code == 1
    report = yaml.safe_load(result.stdout)
    jsonschema.validate(report, project_schema("problems"))
    files = {Path(entry["file"]).stem: entry for entry in report["files"]}
    assert report["valid"] is False
    assert {name: entry["valid"] for name, entry in files.items()} == {
        "good": True,
        "no-4bit": False,
        "syntax": False,
        "unknown": False,
    }
    (problem,) = files["no-4bit"]["problems"]
    assert (problem["code"], problem["path"], problem["severity"]) == (
        "qlora-without-4bit",
        "adapter",
        "error",
    )
    assert isinstance(problem["line"], int)
    assert files["unknown"]["kind"] is None


def test_list_json_matches_its_schema() -> None:
    result = mft("list", "--json")
    assert result.exit_code == 0
    jsonschema.validate(yaml.safe_load(result.stdout), project_schema("recipe-list"))
    assert "schemas/recipe-list.schema.json" in mft("list", "--help").stdout


@pytest.mark.parametrize(
    "command, schema",
    [(["show", RECIPE], "recipe-show"), (["plugins"], "plugin-list")],
    ids=["show", "plugins"],
)
def test_show_and_plugins_json_match_their_schemas(command: list[str], schema: str) -> None:
    result = mft(*command, "--json")
    assert result.exit_code == 0
    jsonschema.validate(yaml.safe_load(result.stdout), project_schema(schema))
    assert f"schemas/{schema}.schema.json" in mft(command[0], "--help").stdout
