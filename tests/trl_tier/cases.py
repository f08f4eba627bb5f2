"""What the trl tier proves, for which recipe: the recipes that list the `trl` target, rendered for it.

Light (no torch, no TRL): the fast tier imports it for the proof table.
"""

from __future__ import annotations

from typing import Any

from mft_recipes.host import get_registry
from mft_recipes.recipes import Recipe
from mft_recipes.render import RenderedDocument, render_recipe

TARGET = "trl"
# mixtral-moe quantizes its fused experts with axolotl's quantize_moe_experts, which TRL cannot express:
# rendered for TRL, only its CPU profile (which leaves that key out) exists.
CPU_ONLY = {"mixtral-moe"}
CHECKS = {
    1: "TRL's own parser (trl sft's dataclasses) accepts the rendered config with no unknown key; peft's "
    "LoraConfig and bitsandbytes' config build from it",
    2: "peft on the real architecture (meta device), from TRL's own LoRA config: every target matches, experts "
    "adapted on Mixtral, trainable count = the plan's closed form (the axolotl render's)",
    3: "`trl sft --config` on CPU on a tiny model trains every LoRA weight (Mixtral: expert LoRA, router aux "
    "loss); `export` and `eval` (vLLM) accept the adapter",
    4: "`accelerate launch` with the rendered accelerate config: two CPU ranks over gloo train the ZeRO-3 "
    "setup on a tiny model",
    5: "TRL's own dataset preparation of `trl tokenize`'s rows: every row is mistral-common's "
    "encode_chat_completion, labels the trained answers and their EOS",
}
TRAINING_RUNS = {"mistral-7b-lora": False, "mixtral-moe": True}  # recipe: Mixtral (moe)
CPU_OVERRIDES: dict[str, Any] = {
    "device": "cpu",
    "sequence_len": 256,
    "micro_batch_size": 2,
    "gradient_accumulation_steps": 1,
    "num_epochs": 1,
    "val_set_size": 0.2,
    "learning_rate": 0.001,
}


def trl_recipes() -> list[Recipe]:
    return sorted(
        (recipe for recipe in get_registry().recipes.values() if TARGET in recipe.renders_for),
        key=lambda recipe: recipe.name,
    )


def uses_deepspeed(recipe: Recipe) -> bool:
    return recipe.hardware.gpus > 1


def checks_for(recipe: Recipe) -> list[int]:
    checks = [1, 2]
    if recipe.name in TRAINING_RUNS:
        checks += [3, 5]
    if uses_deepspeed(recipe):
        checks.append(4)
    return sorted(checks)


def render_trl(recipe: Recipe, overrides: dict[str, Any]) -> RenderedDocument:
    """The recipe rendered for TRL, with a placeholder dataset unless given; CPU_ONLY recipes on CPU."""
    given = {"dataset": "train.tokens.jsonl", **overrides}
    if recipe.name in CPU_ONLY:
        given.setdefault("device", "cpu")
    rendered = render_recipe(recipe, given, get_registry(), TARGET)
    assert rendered.errors == [], rendered.errors
    return rendered
