"""Check 2: each recipe's LoRA, applied by axolotl's own `load_lora` to the real architecture built from
its published config.json on the meta device: every listed target matches something, Mixtral recipes
adapt the expert weights, and peft's trainable count equals the closed form the plan reports."""

from __future__ import annotations

from typing import Any

import pytest
from mft_recipes_axolotl import deep
from mft_recipes_plan.counts import count_parameters

from mft_recipes.host import get_registry
from tests.truth.cases import axolotl_recipes, overrides_for, published_config, render

pytestmark = [pytest.mark.axolotl, pytest.mark.usefixtures("axolotl_installed")]

RECIPES = {recipe.name: recipe for recipe in axolotl_recipes()}


def lora_report(document: dict[str, Any], model: str, gpus: int = 1) -> deep.LoraReport:
    config = deep.axolotl_config(document, published_config(model), gpus=gpus)
    return deep.apply_lora(config, deep.meta_model(config))


@pytest.mark.parametrize("variant", ["defaults", "resized"])
@pytest.mark.parametrize("name", list(RECIPES))
def test_the_lora_trains_what_the_recipe_says(name: str, variant: str) -> None:
    recipe = RECIPES[name]
    document = render(recipe, overrides_for(recipe, variant))
    report = lora_report(document, recipe.model, recipe.hardware.gpus)
    closed_form = count_parameters(get_registry().architectures[recipe.model], document)
    assert report.unmatched == ()
    assert deep.lora_problems(report) == []
    if "Mixtral" in recipe.model:
        assert report.expert_parameters == ("down_proj", "gate_up_proj")
    assert report.trainable == closed_form.trainable
    assert report.total == closed_form.peft_total


# Counted by hand from the published shapes (the arithmetic is in tests/plan/test_counts.py): r=16 on
# q,k,v,o (+ the MLP: gate/up/down on Mistral, w1/w2/w3 as peft converts them on Mixtral).
HAND_COUNTS = [
    ("Mistral-7B-v0.3", ["q_proj", "k_proj", "v_proj", "o_proj"], 13_631_488),
    (
        "Mistral-7B-v0.3",
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        41_943_040,
    ),
    ("Mixtral-8x7B-v0.1", ["q_proj", "k_proj", "v_proj", "o_proj"], 13_631_488),
    ("Mixtral-8x7B-v0.1", ["q_proj", "k_proj", "v_proj", "o_proj", "w1", "w2", "w3"], 357_564_416),
    ("Mixtral-8x22B-v0.1", ["q_proj", "k_proj", "v_proj", "o_proj"], 34_865_152),
    ("Mixtral-8x22B-v0.1", ["q_proj", "k_proj", "v_proj", "o_proj", "w1", "w2", "w3"], 754_188_288),
]


def lora_document(model: str, **lora: Any) -> dict[str, Any]:
    architecture = get_registry().architectures[model]
    return {
        "base_model": architecture.hub_ids[0],
        "adapter": "lora",
        "lora_r": 16,
        "lora_alpha": 32,
        "lora_dropout": 0.0,
        **lora,
        "datasets": [{"path": "train.jsonl", "type": "chat_template"}],
        "micro_batch_size": 1,
        "gradient_accumulation_steps": 1,
        "num_epochs": 1,
        "learning_rate": 1e-4,
        "output_dir": "./out",
    }


@pytest.mark.parametrize(("model", "targets", "expected"), HAND_COUNTS)
def test_trainable_counts_match_the_hand_counts(model: str, targets: list[str], expected: int) -> None:
    document = lora_document(model, lora_target_modules=targets)
    report = lora_report(document, model)
    assert report.trainable == expected
    assert count_parameters(get_registry().architectures[model], document).trainable == expected


def test_a_mixtral_config_with_lora_target_linear_alone_is_caught() -> None:
    """axolotl's own Mixtral examples do this: it adapts attention and trains no expert weight."""
    document = lora_document("Mixtral-8x7B-v0.1", lora_target_linear=True)
    report = lora_report(document, "Mixtral-8x7B-v0.1")
    assert report.trainable > 0 and report.expert_parameters == ()
    assert [problem.code for problem in deep.lora_problems(report)] == ["experts-not-trained"]


def test_expert_names_on_dense_mistral_are_caught() -> None:
    """On Mistral w1/w2/w3 match nothing; peft says nothing because q_proj matched."""
    document = lora_document("Mistral-7B-v0.3", lora_target_modules=["q_proj", "w1", "w2", "w3"])
    report = lora_report(document, "Mistral-7B-v0.3")
    assert report.unmatched == ("w1", "w2", "w3")
    assert {problem.code for problem in deep.lora_problems(report)} == {"target-matches-nothing"}
