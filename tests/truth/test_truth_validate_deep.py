"""`mft-recipes validate --deep FILE` runs checks 1-2 on any axolotl config, through the real CLI; without
axolotl it says what to install."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mft_recipes.host import get_registry
from mft_recipes.validation import ValidationContext
from tests.truth.cases import axolotl_recipes, overrides_for, render

BIN = Path(sys.executable).parent
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "disabled", "DO_NOT_TRACK": "1"}

# Close to axolotl's own examples/mistral/mixtral-qlora.yml: it adapts attention only, no expert weight.
HAND_WRITTEN_MIXTRAL = """\
base_model: mistralai/Mixtral-8x7B-v0.1
load_in_4bit: true
adapter: qlora
lora_r: 32
lora_alpha: 16
lora_dropout: 0.05
lora_target_linear: true
datasets:
  - path: train.jsonl
    type: chat_template
output_dir: ./outputs/qlora-out
sequence_len: 4096
micro_batch_size: 2
gradient_accumulation_steps: 4
num_epochs: 1
learning_rate: 0.0002
"""


def validate(path: Path, *options: str, block_axolotl: bool = False) -> tuple[int, dict[str, Any], str]:
    prelude = "import sys; sys.modules['axolotl'] = None; " if block_axolotl else ""
    code = prelude + "from mft_recipes.cli import main; sys.argv[0] = 'mft-recipes'; main()"
    if not block_axolotl:
        code = "import sys; " + code
    result = subprocess.run(
        [sys.executable, "-c", code, "validate", "--deep", "--json", *options, str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, **OFFLINE},
        timeout=600,
    )
    return result.returncode, json.loads(result.stdout) if result.stdout else {}, result.stderr


def codes(report: dict[str, Any]) -> list[str]:
    return [problem["code"] for problem in report["files"][0]["problems"]]


def test_without_axolotl_it_is_a_usage_error_that_says_what_to_install(tmp_path: Path) -> None:
    """A missing extra is a usage error (exit 2), not an invalid config: nothing is reported on stdout."""
    path = tmp_path / "config.yml"
    path.write_text(HAND_WRITTEN_MIXTRAL)
    code, report, stderr = validate(path, block_axolotl=True)
    assert (code, report) == (2, {})
    assert "--deep runs axolotl's own validation" in stderr and "pip install 'mft-recipes[axolotl]'" in stderr


@pytest.mark.axolotl
@pytest.mark.usefixtures("axolotl_installed")
def test_a_hand_written_mixtral_config_that_trains_no_expert_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "mixtral-qlora.yml"
    path.write_text(HAND_WRITTEN_MIXTRAL)
    code, report, stderr = validate(path)
    assert code == 1, stderr[-2000:]
    assert "experts-not-trained" in codes(report)
    problem = next(p for p in report["files"][0]["problems"] if p["code"] == "experts-not-trained")
    assert (problem["path"], problem["line"]) == ("lora_target_linear", 7)


@pytest.mark.axolotl
@pytest.mark.usefixtures("axolotl_installed")
def test_a_rendered_multi_gpu_recipe_passes_the_deep_check(tmp_path: Path) -> None:
    recipe = next(recipe for recipe in axolotl_recipes() if recipe.name == "mixtral-8x22b")
    path = tmp_path / "mixtral-8x22b.yml"
    path.write_text(yaml.safe_dump(render(recipe, overrides_for(recipe, "defaults"))))
    code, report, stderr = validate(path, "--gpus", str(recipe.hardware.gpus))
    errors = [problem for problem in report["files"][0]["problems"] if problem["severity"] == "error"]
    assert (code, errors) == (0, []), stderr[-2000:]


def deep_codes(document: dict[str, Any], gpu: str | None = "h100-80gb") -> dict[str, str]:
    """The deep check in this process (axolotl imported once): {code: message}."""
    from mft_recipes_axolotl.deep import check_deep

    context = ValidationContext("axolotl", get_registry().architecture_view, gpu=gpu)
    return {problem.code: problem.message for problem in check_deep(document, context)}


@pytest.mark.axolotl
@pytest.mark.usefixtures("axolotl_installed")
def test_a_model_outside_the_catalogue_still_gets_axolotls_own_validation() -> None:
    """No config.json (a hub id the catalogue does not know; nothing is downloaded): validate_config
    still runs, and the checks that need the model are named as skipped."""
    document = {**yaml.safe_load(HAND_WRITTEN_MIXTRAL), "base_model": "my-org/unpublished-model"}
    assert set(deep_codes(document)) == {"deep-model-checks-skipped"}
    skipped = deep_codes(document)["deep-model-checks-skipped"]
    assert "normalize_config" in skipped and "LoRA on the real architecture" in skipped
    refused = deep_codes({**document, "load_in_4bit": False})
    assert "load_in_4bit" in refused["axolotl-refused"]


@pytest.mark.axolotl
@pytest.mark.usefixtures("axolotl_installed")
def test_the_gpu_comes_from_the_plan_table_not_an_assumed_one() -> None:
    """fp8 attention needs sm_90 (axolotl's check_fp8_attention_preflight): an A100 (8.0 in the table)
    is refused, an H100 (9.0) is not; without --gpu the check ran as on an A100 and says so."""
    document = yaml.safe_load(
        HAND_WRITTEN_MIXTRAL.replace("mistralai/Mixtral-8x7B-v0.1", "mistralai/Mistral-7B-v0.3")
    )
    document.update(attn_implementation="fp8", adapter="lora", load_in_4bit=False, lora_dropout=0.0)
    document["datasets"][0]["type"] = "alpaca"  # the base model's tokenizer has no chat template
    assert "sm_80" in deep_codes(document, gpu="a100-80gb")["axolotl-refused"]
    assert deep_codes(document, gpu="h100-80gb") == {}
    assumed = deep_codes(document, gpu=None)
    assert set(assumed) == {"axolotl-refused", "deep-gpu-assumed"}
    assert "unknown GPU 'b200'" in deep_codes(document, gpu="b200")["unknown-gpu"]


@pytest.mark.axolotl
@pytest.mark.usefixtures("axolotl_installed")
def test_validate_takes_gpu_from_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "fp8.yml"
    document = yaml.safe_load(
        HAND_WRITTEN_MIXTRAL.replace("mistralai/Mixtral-8x7B-v0.1", "mistralai/Mistral-7B-v0.3")
    )
    document.update(attn_implementation="fp8", adapter="lora", load_in_4bit=False, lora_dropout=0.0)
    document["datasets"][0]["type"] = "alpaca"  # the base model's tokenizer has no chat template
    path.write_text(yaml.safe_dump(document))
    code, report, stderr = validate(path, "--gpu", "h100-80gb")
    assert (code, codes(report)) == (0, []), stderr[-2000:]
