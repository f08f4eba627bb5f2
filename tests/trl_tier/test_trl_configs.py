"""Checks 1 and 2 of the trl tier: every recipe rendered for TRL, as `trl sft` reads it.

1. TRL's own parser (trl/scripts/sft.py's TrlParser over its four dataclasses) takes the config with no
   key left over, and TRL's get_peft_config / get_quantization_config build from it.
2. peft, given the LoraConfig TRL builds, on the real architecture from the published config.json (meta
   device): every target matches, Mixtral's experts are adapted, and the trainable count is the plan's
   closed form, the same number as the axolotl render of the recipe.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mft_recipes_plan.counts import count_parameters
from mft_recipes_plan.plan import PlanOptions, plan_rendered
from mft_recipes_trl.deep import parse

from mft_recipes.host import get_registry
from mft_recipes.render import render_recipe
from tests.trl_tier.cases import render_trl, trl_recipes

pytestmark = [pytest.mark.trl, pytest.mark.usefixtures("trl_installed")]

REPO = Path(__file__).resolve().parents[2]
RECIPES = {recipe.name: recipe for recipe in trl_recipes()}
# bf16 and tf32 are checked by TrainingArguments against this machine's GPU, and it has none.
ON_CPU = ["--bf16", "false", "--tf32", "false"]


def test_the_trl_recipes() -> None:
    assert {"mistral-7b-qlora", "mistral-7b-lora", "mixtral-moe", "mistral-7b-full", "mixtral-8x22b"} <= set(
        RECIPES
    )


def test_the_committed_schema_is_what_the_installed_trl_generates() -> None:
    generate = [sys.executable, str(REPO / "scripts" / "generate_trl_schema.py"), "--check"]
    assert subprocess.run(generate, capture_output=True, text=True).returncode == 0


@pytest.mark.parametrize("variant", [{}, {"device": "cpu"}, {"lora_r": 64, "sequence_len": 2048}])
@pytest.mark.parametrize("name", list(RECIPES))
def test_trls_parser_takes_every_rendered_config(name: str, variant: dict) -> None:
    from trl import get_peft_config, get_quantization_config

    recipe = RECIPES[name]
    overrides = {key: value for key, value in variant.items() if key in recipe.parameters}
    document = render_trl(recipe, overrides).document
    (_script, training, model, data), unknown = parse(document, ON_CPU)
    assert unknown == []
    assert model.model_name_or_path == document["model_name_or_path"]
    assert training.max_length == document["max_length"]
    assert [entry.data_files for entry in data.datasets] == ["train.tokens.jsonl"]
    peft = get_peft_config(model)
    assert (peft is None) == (recipe.method == "full")
    if peft is not None:
        assert peft.r == document["lora_r"] and peft.lora_dropout == document["lora_dropout"]
    assert (get_quantization_config(model) is not None) == (recipe.method == "qlora")


def _trainable_with_peft(document: dict, model_name: str) -> tuple[int, set[str], int]:
    """peft's trainable count, the expert parameters it wraps, and its unmatched targets."""
    import torch
    from peft import get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM
    from trl import get_peft_config

    (_s, _t, model_args, _d), _ = parse(document, ON_CPU)
    config = AutoConfig.from_pretrained(REPO / "tests" / "fixtures" / "published" / model_name)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    peft_config = get_peft_config(model_args)
    if peft_config is None:
        return sum(p.numel() for p in model.parameters() if p.requires_grad), set(), 0
    wrapped = get_peft_model(model, peft_config)
    trainable = sum(p.numel() for p in wrapped.parameters() if p.requires_grad)
    applied = wrapped.peft_config["default"]  # after peft's conversion of Mixtral's w1/w2/w3
    experts = {name.rsplit(".", 1)[-1] for name in (applied.target_parameters or [])}
    adapted = {name for name, _ in wrapped.named_parameters() if "lora_" in name}
    targets = applied.target_modules or set()
    unmatched = [t for t in targets if not any(f".{t}." in name for name in adapted)]
    return trainable, experts, len(unmatched)


@pytest.mark.parametrize("name", list(RECIPES))
def test_peft_trains_what_the_plan_counts(name: str) -> None:
    recipe = RECIPES[name]
    rendered = render_trl(recipe, {})
    trainable, experts, unmatched = _trainable_with_peft(rendered.document, recipe.model)
    plan = plan_rendered(rendered, PlanOptions(), get_registry().architecture_view)
    assert plan.counts is not None
    axolotl = render_recipe(recipe, {"dataset": "train.jsonl", **rendered.parameters}, get_registry())
    closed_form = count_parameters(get_registry().architectures[recipe.model], axolotl.document)
    assert trainable == plan.counts.trainable == closed_form.trainable
    assert unmatched == 0
    if "Mixtral" in recipe.model:
        assert experts == {"gate_up_proj", "down_proj"}
        adapter = json.dumps(rendered.document)
        assert '"lora_dropout": 0.0' in adapter and "output_router_logits" in adapter
