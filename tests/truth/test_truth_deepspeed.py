"""Check 4: the inline DeepSpeed section of every multi-GPU recipe, with the HF Trainer's "auto" values
resolved for the recipe's GPU count, is accepted by DeepSpeed's own config classes (the strict ZeRO model
and the batch arithmetic) on that many data-parallel ranks."""

from __future__ import annotations

import pytest
from mft_recipes_axolotl import deep

from tests.truth.cases import axolotl_recipes, overrides_for, published_config, render, uses_deepspeed

pytestmark = [pytest.mark.axolotl, pytest.mark.usefixtures("axolotl_installed")]

RECIPES = {recipe.name: recipe for recipe in axolotl_recipes() if uses_deepspeed(recipe)}


def resolved_section(name: str, variant: str) -> dict:
    recipe = RECIPES[name]
    document = render(recipe, overrides_for(recipe, variant))
    config = deep.axolotl_config(
        document, published_config(recipe.model), gpus=recipe.hardware.gpus, gpu=recipe.hardware.gpu
    )
    return deep.resolved_deepspeed(config, recipe.hardware.gpus)


def test_the_multi_gpu_recipes_carry_deepspeed() -> None:
    assert {"mistral-7b-full", "mixtral-8x22b"} <= set(RECIPES)


@pytest.mark.parametrize("variant", ["defaults", "resized"])
@pytest.mark.parametrize("name", list(RECIPES))
def test_deepspeed_accepts_the_resolved_section(name: str, variant: str) -> None:
    recipe = RECIPES[name]
    section = resolved_section(name, variant)
    assert deep.deepspeed_problems(section, recipe.hardware.gpus) == []
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
    assert [p.code for p in deep.deepspeed_problems(section, recipe.hardware.gpus // 2)] == [
        "deepspeed-refused"
    ]
    section["zero_optimization"]["stage"] = 5
    assert [p.code for p in deep.deepspeed_problems(section, recipe.hardware.gpus)] == ["deepspeed-refused"]
    section["zero_optimization"]["stage"] = 3
    section["zero_optimization"]["reduce_bucket_size"] = "auto"
    assert [p.code for p in deep.deepspeed_problems(section, recipe.hardware.gpus)] == ["deepspeed-auto-left"]
