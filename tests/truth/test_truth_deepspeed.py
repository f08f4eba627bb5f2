"""Check 4: the inline DeepSpeed section of every multi-GPU recipe, with the HF Trainer's "auto" values
resolved for the recipe's GPU count, is accepted by DeepSpeed's own config classes (the strict ZeRO model
and the batch arithmetic) on that many data-parallel ranks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mft_recipes_axolotl import deep
from mft_recipes_axolotl.deepspeed_check import deepspeed_problems, resolved_deepspeed

from tests.tiny_models import build_tiny_model
from tests.truth.cases import (
    CPU_OVERRIDES,
    KNOWN_BROKEN,
    REPO,
    axolotl_recipes,
    checks_for,
    known_broken,
    overrides_for,
    published_config,
    render,
    uses_deepspeed,
)

pytestmark = [pytest.mark.axolotl, pytest.mark.usefixtures("axolotl_installed")]

BIN = Path(sys.executable).parent

RECIPES = {recipe.name: recipe for recipe in axolotl_recipes() if uses_deepspeed(recipe)}


def resolved_section(name: str, variant: str) -> dict:
    recipe = RECIPES[name]
    document = render(recipe, overrides_for(recipe, variant))
    config = deep.axolotl_config(
        document, published_config(recipe.model), gpus=recipe.hardware.gpus, gpu=recipe.hardware.gpu
    )
    return resolved_deepspeed(config, recipe.hardware.gpus, deep.meta_model_config(config))


def test_the_multi_gpu_recipes_carry_deepspeed() -> None:
    assert {"mistral-7b-full", "mixtral-8x22b"} <= set(RECIPES)


@pytest.mark.parametrize("variant", ["defaults", "resized"])
@pytest.mark.parametrize("name", list(RECIPES))
def test_deepspeed_accepts_the_resolved_section(name: str, variant: str) -> None:
    recipe = RECIPES[name]
    section = resolved_section(name, variant)
    assert deepspeed_problems(section, recipe.hardware.gpus) == []
    document = render(recipe, overrides_for(recipe, variant))
    micro, accumulation = document["micro_batch_size"], document["gradient_accumulation_steps"]
    assert section["train_batch_size"] == micro * accumulation * recipe.hardware.gpus
    assert section["bf16"]["enabled"] is True
    # A ZeRO-3 save must gather the weights, or the output is shards, not a model or adapter.
    if section["zero_optimization"]["stage"] == 3:
        assert section["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True


@pytest.mark.parametrize("name", list(RECIPES))
def test_deepspeed_refuses_the_section_on_the_wrong_gpu_count_and_with_a_bad_stage(name: str) -> None:
    """The check can fail: the batch arithmetic is tied to the GPU count, the ZeRO model is strict."""
    recipe = RECIPES[name]
    section = resolved_section(name, "defaults")
    assert [p.code for p in deepspeed_problems(section, recipe.hardware.gpus // 2)] == ["deepspeed-refused"]
    section["zero_optimization"]["stage"] = 5
    assert [p.code for p in deepspeed_problems(section, recipe.hardware.gpus)] == ["deepspeed-refused"]
    section["zero_optimization"]["stage"] = 3
    section["zero_optimization"]["reduce_bucket_size"] = "auto"
    assert [p.code for p in deepspeed_problems(section, recipe.hardware.gpus)] == ["deepspeed-auto-left"]


# Run in a child process: the patches change transformers' classes for the rest of the process.
PRELOAD_PATCHES = """
import json, sys
from transformers.integrations.deepspeed import HfDeepSpeedConfig
from axolotl.loaders.patch_manager import PatchManager
from mft_recipes.host import get_registry
from mft_recipes_axolotl import deep
from mft_recipes_axolotl.deepspeed_check import resolved_deepspeed
from tests.truth.cases import overrides_for, published_config, render

recipe = get_registry().recipes[sys.argv[1]]
folder = published_config(recipe.model)  # a local base_model: some patches read its config.json
document = render(recipe, {**overrides_for(recipe, "defaults"), "base_model": str(folder)})
config = deep.axolotl_config(document, folder, gpus=recipe.hardware.gpus)
section = resolved_deepspeed(config, recipe.hardware.gpus, deep.meta_model_config(config))
live = HfDeepSpeedConfig(section)  # what the HF Trainer holds during a DeepSpeed launch (ZeRO-3 on)
PatchManager(config, deep.meta_model_config(config)).apply_pre_model_load_patches()
print("patched")
"""


@pytest.mark.parametrize("name", list(RECIPES))
def test_axolotl_applies_its_pre_load_patches_under_the_recipes_deepspeed(name: str) -> None:
    """axolotl patches the model classes before loading, and some patches exist only under ZeRO-3 (its
    Mixtral ZeRO-3 + sample packing patch imports a class transformers 5.x no longer has)."""
    result = subprocess.run(
        [sys.executable, "-c", PRELOAD_PATCHES, name], capture_output=True, text=True, cwd=REPO, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("patched")


def zero3_recipes() -> list[str]:
    return [name for name in RECIPES if 5 in checks_for(RECIPES[name])]


@pytest.mark.parametrize("name", zero3_recipes())
def test_two_cpu_ranks_train_the_recipes_zero3_setup(
    name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Two processes over gloo: the recipe's ZeRO-3 section partitions a tiny model, axolotl's LoRA (if the
    recipe has one) wraps the partitioned weights, and three optimizer steps run (tests/truth/zero3_ranks.py)."""
    recipe = RECIPES[name]
    broken = known_broken(name)
    if broken:  # it still runs; strict where it fails every time, so the entry goes once the stack is fixed
        request.applymarker(pytest.mark.xfail(reason=broken, strict=KNOWN_BROKEN[name][3]))
    moe = "Mixtral" in recipe.model
    base = build_tiny_model(tmp_path / "base", moe=moe)
    overrides = {
        **CPU_OVERRIDES,
        "base_model": str(base),
        "dataset": str(tmp_path / "unused.jsonl"),
        "micro_batch_size": 1,
        "output_dir": str(tmp_path / "out"),
    }
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump(render(recipe, overrides)))
    result = subprocess.run(
        [
            str(BIN / "torchrun"),
            "--nproc_per_node",
            "2",
            "-m",
            "tests.truth.zero3_ranks",
            str(config),
            str(tmp_path / "result.json"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=900,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "DO_NOT_TRACK": "1", "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    outcome = json.loads((tmp_path / "result.json").read_text())
    assert outcome["world_size"] == 2 and outcome["zero_stage"] == 3
    assert outcome["mismatched"] == [], "ZeRO-3 loaded these weights other than the checkpoint's"
    assert outcome["losses"][-1] < outcome["losses"][0]
    if moe:  # the experts train: their LoRA, or in a full fine-tune their own weights
        trained = "lora_B" if recipe.method != "full" else ".mlp.experts."
        assert any(
            ".mlp.experts." in parameter and trained in parameter for parameter in outcome["trainable"]
        )


@pytest.mark.parametrize("name", list(RECIPES))
def test_validate_warns_exactly_where_the_installed_stack_cannot_run_the_recipe(name: str) -> None:
    """The warning users get from `render`/`validate` on the machine that trains agrees with what the
    two-rank run finds: present with axolotl 0.19's peft and DeepSpeed, absent with axolotl 0.21's."""
    from mft_recipes.host import get_registry
    from mft_recipes.render import render_recipe

    recipe = RECIPES[name]
    rendered = render_recipe(recipe, overrides_for(recipe, "defaults"), get_registry())
    stack = {"zero3-expert-lora-needs-peft", "zero3-moe-load-needs-deepspeed"}
    warned = any(problem.code in stack for problem in rendered.problems)
    assert warned is (known_broken(name) is not None)


class _Ranks:
    """What DeepSpeedConfig asks its model-parallel unit: how many data-parallel ranks."""

    def __init__(self, size: int) -> None:
        self.size = size

    def get_data_parallel_world_size(self) -> int:
        return self.size


@pytest.mark.parametrize(
    ("micro", "accumulation", "total", "gpus"),
    [(2, 4, 16, 2), (2, 4, 16, 4), (2, 4, 16, 1), (1, 8, 24, 3), (2, 3, 20, 2), (4, 1, 12, 3)],
)
def test_the_batch_check_of_a_deepspeed_file_is_deepspeeds_own(
    micro: int, accumulation: int, total: int, gpus: int
) -> None:
    """`validate --gpus N` of a DeepSpeed file refuses exactly the batch values DeepSpeedConfig refuses on
    N data-parallel ranks (its _batch_assertion)."""
    from unittest import mock

    from deepspeed.runtime.config import DeepSpeedConfig

    from mft_recipes.host import get_registry
    from mft_recipes.validation import validate_document

    section = {
        "zero_optimization": {"stage": 2},
        "train_micro_batch_size_per_gpu": micro,
        "gradient_accumulation_steps": accumulation,
        "train_batch_size": total,
    }
    found = {problem.code for problem in validate_document(section, "deepspeed", get_registry(), gpus=gpus)}
    try:
        with mock.patch("deepspeed.runtime.config.dist.get_rank", return_value=0):
            DeepSpeedConfig(json.loads(json.dumps(section)), mpu=_Ranks(gpus))
        refused = False
    except AssertionError:
        refused = True
    assert ("batch-mismatch" in found) is refused
