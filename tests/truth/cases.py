"""What the truth tier proves, for which recipe: one list that the tests parametrize over and the proof
table in docs/proof.md is generated from, so the table cannot claim a check the tier does not run.

Light on purpose (no torch, no axolotl): the fast tier imports it to check that the table is current.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mft_recipes_axolotl.validators import DEEPSPEED_FOR_ZERO3_MOE_LOAD, PEFT_FOR_ZERO3_EXPERT_LORA

from mft_recipes.host import get_registry
from mft_recipes.recipes import Recipe
from mft_recipes.render import render_recipe

REPO = Path(__file__).resolve().parents[2]
PUBLISHED = REPO / "tests" / "fixtures" / "published"

# Overrides a user might well type, beyond the defaults (each applied where the recipe declares it).
VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "resized": {
        "lora_r": 64,
        "lora_alpha": 128,
        "sequence_len": 2048,
        "micro_batch_size": 1,
        "gradient_accumulation_steps": 16,
        "learning_rate": 1e-5,
    },
    "no-eval": {"val_set_size": 0, "num_epochs": 1, "wandb_project": "mft-recipes-proof"},
}

# Check 3: real CPU runs. Only what a CPU needs on top of the model and the data: `device=cpu` (the
# axolotl plugin's CPU profile: no bf16/tf32, no flash attention, no Triton kernels, no CUDA-only expert
# quantization) and sizes that make three optimizer steps out of the tiny dataset.
TRAINING_RUNS: dict[str, dict[str, Any]] = {
    "mistral-7b-lora": {"moe": False},
    "mixtral-moe": {"moe": True},
}
CPU_OVERRIDES = {
    "device": "cpu",
    "sequence_len": 128,
    "micro_batch_size": 2,
    "gradient_accumulation_steps": 1,
    "num_epochs": 1,
    "val_set_size": 0,
}

CHECKS = {
    1: "axolotl's own validate_config + normalize_config; every key known to axolotl",
    2: "LoRA applied by axolotl on the real architecture (meta device): every target matches, experts "
    "adapted on Mixtral, trainable count = closed form",
    3: "a real `render | axolotl train /dev/stdin` run on CPU on a tiny model trains the adapter",
    4: "inline DeepSpeed section, with HF Trainer's `auto` values resolved for the recipe's GPU count, "
    "accepted by DeepSpeed's own config classes; axolotl's pre-load patches apply under it",
    5: "two CPU ranks over gloo train the recipe's ZeRO-3 setup on a tiny model (weights partitioned, "
    "axolotl's LoRA on the partitioned model, three optimizer steps)",
    6: "`axolotl preprocess` of the rendered recipe on a tiny model with Mistral's real tokenizer and no chat "
    "template: every row equals mistral-common's encode_chat_completion (system prompts, multi-turn, weight "
    "0, tool calls, unicode, whitespace), labels are the trained answers and their EOS, `data check` counts "
    "the row lengths and keeps the rows axolotl keeps",
}


def axolotl_recipes() -> list[Recipe]:
    """Every recipe that renders to axolotl, built-in or added by an installed plugin."""
    recipes = get_registry().recipes.values()
    return sorted(
        (recipe for recipe in recipes if recipe.target == "axolotl"), key=lambda recipe: recipe.name
    )


def overrides_for(recipe: Recipe, variant: str) -> dict[str, Any]:
    """The variant's overrides that the recipe declares, plus a dataset (the one required parameter)."""
    declared = recipe.parameters
    chosen = {key: value for key, value in VARIANTS[variant].items() if key in declared}
    return {"dataset": "train.jsonl", **chosen}


def render(recipe: Recipe, overrides: dict[str, Any]) -> dict[str, Any]:
    """The recipe rendered as `mft-recipes render` would print it; fails if render finds it invalid."""
    rendered = render_recipe(recipe, overrides, get_registry())
    assert not rendered.errors, "\n".join(map(str, rendered.errors))
    return rendered.document


def published_config(model: str) -> Path:
    """The folder holding the model's published config.json (tests/fixtures/published/<model>/)."""
    return PUBLISHED / model


def uses_deepspeed(recipe: Recipe) -> bool:
    return "deepspeed" in render(recipe, overrides_for(recipe, "defaults"))


def checks_for(recipe: Recipe) -> list[int]:
    """The checks the tier runs on the recipe."""
    checks = [1, 2]
    if recipe.name in TRAINING_RUNS:
        checks.append(3)
    document = render(recipe, overrides_for(recipe, "defaults"))
    if "deepspeed" in document:
        checks.append(4)
        if document["deepspeed"].get("zero_optimization", {}).get("stage") == 3:
            checks.append(5)
    return [*checks, 6]


# What the tier found broken in a pinned stack, by recipe: (the library, the first version that works,
# why, whether it fails every time). A check that meets one is an expected failure there (xfail: when it
# fails every time, strict, so a pass fails the run and the entry goes once the pin moves; when it fails
# only now and then, not strict) and the proof table says so; the axolotl_latest session proves the fix.
# The version is the axolotl plugin's, whose validator warns users of the same stack.
KNOWN_BROKEN: dict[str, tuple[str, str, str, bool]] = {
    "mixtral-8x22b": (
        "peft",
        PEFT_FOR_ZERO3_EXPERT_LORA,
        "peft 0.20.0 (axolotl 0.19's pin) cannot wrap ZeRO-3-partitioned expert parameters: "
        f"ParamWrapper reads the empty partitioned shape (IndexError); peft {PEFT_FOR_ZERO3_EXPERT_LORA} reads ds_shape",
        True,
    ),
    "mixtral-8x22b-full": (
        "deepspeed",
        DEEPSPEED_FOR_ZERO3_MOE_LOAD,
        "DeepSpeed 0.18.9 (axolotl 0.19 allows only below 0.19) can load Mixtral's fused gate_up_proj wrong "
        "under ZeRO-3 (9 of 42 two-rank loads differed from the checkpoint, some NaN); "
        f"DeepSpeed {DEEPSPEED_FOR_ZERO3_MOE_LOAD} loaded it exactly (0 of 42)",
        False,
    ),
}


def known_broken(name: str) -> str | None:
    """Why the recipe's ZeRO-3 run cannot work with the installed stack, or None when it should."""
    from importlib.metadata import version

    from packaging.version import Version

    if name not in KNOWN_BROKEN:
        return None
    package, fixed_in, reason, _ = KNOWN_BROKEN[name]
    return reason if Version(version(package)) < Version(fixed_in) else None
