"""La Plateforme job payloads: the two recipes, the strict schema, the validators, and agreement with the
real mistralai SDK (2.5.1) that sends them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from click.testing import CliRunner
from mft_recipes_platform.payload import with_wandb_key

from mft_recipes.cli import cli
from mft_recipes.host import get_registry
from mft_recipes.recipes import ParameterError
from mft_recipes.render import render_recipe
from mft_recipes.schemas import load_schema
from mft_recipes.validation import validate_document
from tests.refusals import assert_refused

REPO = Path(__file__).resolve().parents[2]
LABELS = {
    "level1_labels": ["Electronics", "Home"],
    "level2_labels": ["Audio", "Kitchen", "Lighting"],
    "level3_labels": ["Headphones", "Speakers", "Blenders", "Lamps"],
}


def render(recipe: str, **overrides: object) -> dict:
    registry = get_registry()
    rendered = render_recipe(registry.recipes[recipe], overrides, registry)
    assert rendered.errors == []
    return rendered.document


def problems(document: dict) -> list[tuple[str, str, str]]:
    found = validate_document(document, "la-plateforme-job", get_registry())
    return [(problem.code, problem.severity, ".".join(map(str, problem.path))) for problem in found]


def test_render_prints_the_completion_payload_as_json():
    result = CliRunner().invoke(
        cli, ["render", "platform-mistral-7b", "training_file=file-abc", "--format", "json"]
    )

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "model": "open-mistral-7b",
        "job_type": "completion",
        "training_files": [{"file_id": "file-abc", "weight": 1}],
        "hyperparameters": {"training_steps": 100, "learning_rate": 0.0001},
        "auto_start": False,
    }


def test_optional_parts_appear_only_when_set():
    document = render(
        "platform-mistral-7b",
        training_file="file-a",
        validation_file="file-v",
        training_file_weight=2.5,
        training_steps=None,
        epochs=3,
        seq_len=8192,
        suffix="support",
        wandb_project="ft",
        wandb_run_name="run-1",
        auto_start=True,
    )

    assert document["training_files"] == [{"file_id": "file-a", "weight": 2.5}]
    assert document["validation_files"] == ["file-v"]
    assert document["hyperparameters"] == {"epochs": 3, "learning_rate": 0.0001, "seq_len": 8192}
    assert document["integrations"] == [{"type": "wandb", "project": "ft", "name": "run-1"}]
    assert document["suffix"] == "support" and document["auto_start"] is True


def test_the_classifier_recipe_has_three_single_class_levels():
    document = render("platform-classifier", training_file="file-a", level3_weight=2, **LABELS)

    assert document["job_type"] == "classifier"
    assert document["classifier_targets"] == [
        {"name": "level1", "labels": ["Electronics", "Home"], "weight": 1, "loss_function": "single_class"},
        {
            "name": "level2",
            "labels": ["Audio", "Kitchen", "Lighting"],
            "weight": 1,
            "loss_function": "single_class",
        },
        {"name": "level3", "labels": LABELS["level3_labels"], "weight": 2, "loss_function": "single_class"},
    ]
    assert problems(document) == []


def test_the_classifier_labels_are_required_and_given_as_yaml_lists():
    registry = get_registry()
    with pytest.raises(ParameterError, match="level1_labels is required"):
        render_recipe(registry.recipes["platform-classifier"], {"training_file": "f"}, registry)
    words = ["level1_labels=[Electronics, Home]", "level2_labels=[Audio, Kitchen]", "level3_labels=[A, B]"]
    result = CliRunner().invoke(cli, ["render", "platform-classifier", "training_file=f", *words])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["classifier_targets"][0]["labels"] == ["Electronics", "Home"]


@pytest.mark.parametrize("recipe", ["platform-mistral-7b", "platform-classifier"])
def test_training_steps_null_without_epochs_is_a_usage_error(recipe):
    """A payload with neither says nothing of how long to train: refused at render, naming both."""
    words = [f"{name}={json.dumps(labels)}" for name, labels in LABELS.items()]
    words = words if recipe == "platform-classifier" else []
    result = CliRunner().invoke(cli, ["render", recipe, "training_file=f", "training_steps=null", *words])
    assert_refused(result, 2, "none of training_steps, epochs is set", "training_steps=... or epochs=...")
    assert result.stdout == ""
    by_epochs = CliRunner().invoke(
        cli, ["render", recipe, "training_file=f", "training_steps=null", "epochs=2", *words]
    )
    assert by_epochs.exit_code == 0, by_epochs.output
    assert json.loads(by_epochs.stdout)["hyperparameters"]["epochs"] == 2


@pytest.mark.parametrize("recipe", ["platform-mistral-7b", "platform-classifier"])
def test_rendered_payloads_are_accepted_by_the_sdks_own_request_model(recipe):
    from mistralai.client.models import CreateFineTuningJobRequest

    document = render(
        recipe,
        training_file="file-a",
        validation_file="file-v",
        suffix="s",
        **(LABELS if recipe == "platform-classifier" else {}),
    )
    sent = with_wandb_key(
        {**document, "integrations": [{"type": "wandb", "project": "p"}]}, {"WANDB_API_KEY": "k"}
    )

    request = CreateFineTuningJobRequest.model_validate(sent)
    assert request.model_dump(mode="json", exclude_unset=True, by_alias=True) == sent


def test_the_schema_names_only_fields_the_pinned_sdk_sends():
    from mistralai.client import models

    schema = load_schema("la-plateforme-job")
    definitions = schema["$defs"]
    pairs = [
        (schema["properties"], models.CreateFineTuningJobRequest),
        (definitions["hyperparameters"]["properties"], models.CompletionTrainingParameters),
        (definitions["classifier_target"]["properties"], models.ClassifierTarget),
        (definitions["wandb"]["properties"], models.WandbIntegration),
        (schema["properties"]["training_files"]["items"]["properties"], models.TrainingFile),
    ]
    for properties, model in pairs:
        assert set(properties) <= set(model.model_fields), model.__name__
    classifier_fields = set(models.ClassifierTrainingParameters.model_fields)
    assert set(definitions["hyperparameters"]["properties"]) - classifier_fields == {"fim_ratio"}


@pytest.mark.parametrize(
    ("change", "code", "path"),
    [
        ({"surprise": 1}, "unknown-key", "surprise"),
        ({"training_files": []}, "schema-minItems", "training_files"),
        ({"hyperparameters": {"learning_rate": 0.5}}, "schema-maximum", "hyperparameters.learning_rate"),
        ({"hyperparameters": {"training_steps": 0}}, "schema-minimum", "hyperparameters.training_steps"),
        ({"invalid_sample_skip_percentage": 0.9}, "schema-maximum", "invalid_sample_skip_percentage"),
        ({"job_type": "classifier"}, "schema-required", "classifier_targets"),
        ({"classifier_targets": [{"name": "a", "labels": ["x", "y"]}]}, "schema-const", "job_type"),
        (
            {"integrations": [{"type": "wandb", "project": "p", "api_key": "s3cret-value"}]},
            "unknown-key",
            "integrations.0.api_key",
        ),
    ],
)
def test_the_schema_refuses(change, code, path):
    document = {**render("platform-mistral-7b", training_file="file-a"), **change}

    assert (code, "error", path) in problems(document)


def test_fim_ratio_is_for_completion_jobs_only():
    document = render("platform-classifier", training_file="file-a", **LABELS)
    document["hyperparameters"]["fim_ratio"] = 0.1

    assert ("unknown-key", "error", "hyperparameters.fim_ratio") in problems(document)


def test_a_key_in_a_payload_is_refused_without_repeating_it():
    document = render("platform-mistral-7b", training_file="file-a")
    document["integrations"] = [{"type": "wandb", "project": "p", "api_key": "s3cret-value"}]

    found = validate_document(document, "la-plateforme-job", get_registry())
    secret = [problem for problem in found if problem.code == "secret-in-payload"]
    assert len(secret) == 1 and "WANDB_API_KEY" in secret[0].message
    assert not any("s3cret-value" in str(problem) for problem in found)


def test_validate_refuses_a_payload_file_with_a_key(tmp_path):
    payload = render("platform-mistral-7b", training_file="file-a")
    payload["integrations"] = [{"type": "wandb", "project": "p", "api_key": "s3cret-value"}]
    path = tmp_path / "job.json"
    path.write_text(json.dumps(payload, indent=2))

    result = CliRunner().invoke(cli, ["validate", str(path)])

    assert result.exit_code == 1
    assert "la-plateforme-job" in result.output and "secret-in-payload" in result.output
    assert "s3cret-value" not in result.output


def test_validators_catch_what_the_schema_cannot():
    document = render("platform-mistral-7b", training_file="file-a", epochs=2, model="open-mistral-7bb")
    document["validation_files"] = ["file-a"]
    found = problems(document)

    assert ("validation-is-training", "error", "validation_files.0") in found
    assert ("steps-and-epochs", "warning", "hyperparameters") in found
    assert ("undocumented-model", "warning", "model") in found
    classifier = render("platform-classifier", training_file="file-a", **LABELS)
    classifier["classifier_targets"][1]["name"] = "level1"
    assert ("duplicate-target", "error", "classifier_targets.1.name") in problems(classifier)


def test_documented_and_fine_tuned_models_pass_quietly():
    for model in ("mistral-small-latest", "ft:open-mistral-7b:support:1234abcd"):
        assert problems(render("platform-mistral-7b", training_file="file-a", model=model)) == []


def test_the_wandb_key_is_added_to_a_copy_only():
    payload = render("platform-mistral-7b", training_file="file-a", wandb_project="p")

    sent = with_wandb_key(payload, {"WANDB_API_KEY": "k"})

    assert sent["integrations"][0]["api_key"] == "k"
    assert "api_key" not in payload["integrations"][0]
    with pytest.raises(KeyError):
        with_wandb_key(payload, {})


def test_the_sdk_pin_is_the_same_in_pyproject_noxfile_and_the_environment():
    pyproject = (REPO / "pyproject.toml").read_text()
    noxfile = (REPO / "noxfile.py").read_text()
    (extra,) = re.findall(r'^platform = \["mistralai==([\d.]+)"', pyproject, re.MULTILINE)
    (nox_pin,) = re.findall(r'^MISTRALAI = "mistralai==([\d.]+)"', noxfile, re.MULTILINE)

    assert extra == nox_pin == metadata.version("mistralai")


def test_render_and_help_do_not_import_the_sdk():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from mft_recipes.cli import main\n"
        "sys.argv = ['mft-recipes', 'render', 'platform-mistral-7b', 'training_file=f', '--format', 'json']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "sys.argv = ['mft-recipes', 'platform', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('SDK LOADED' if 'mistralai' in sys.modules else 'SDK NOT LOADED', file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert "submit" in result.stdout
    assert result.stderr.strip().endswith("SDK NOT LOADED")
