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
    return result.returncode, json.loads(result.stdout), result.stderr


def codes(report: dict[str, Any]) -> list[str]:
    return [problem["code"] for problem in report["files"][0]["problems"]]


def test_without_axolotl_it_says_what_to_install(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(HAND_WRITTEN_MIXTRAL)
    code, report, _ = validate(path, block_axolotl=True)
    assert code == 1 and "deep-unavailable" in codes(report)
    message = next(p["message"] for p in report["files"][0]["problems"] if p["code"] == "deep-unavailable")
    assert "pip install 'mft-recipes[axolotl]'" in message


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
