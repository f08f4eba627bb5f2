"""The closed-form counts against peft itself (the pinned stack) on small Mistral and Mixtral models on the
meta device, for the document shapes the recipes do not cover: regex and `all-linear` targets, the
router, target_parameters, modules_to_save, lora_target_linear (axolotl's own find_all_linear_names)."""

from __future__ import annotations

from typing import Any

import pytest
from mft_recipes_plan.counts import CountError, count_parameters

from mft_recipes.architectures import Architecture

pytestmark = pytest.mark.axolotl

SHAPE: dict[str, Any] = {
    "hidden_size": 64,
    "intermediate_size": 96,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "vocab_size": 100,
    "max_position_embeddings": 128,
    "tokenizer": "v1",
}
ARCHITECTURES = {
    "mixtral": Architecture(
        name="small-moe", model_type="mixtral", num_local_experts=4, num_experts_per_tok=2, **SHAPE
    ),
    "mistral": Architecture(name="small-dense", model_type="mistral", **SHAPE),
}
DOCUMENTS: dict[str, dict[str, Any]] = {
    "q,v": {"lora_target_modules": ["q_proj", "v_proj"]},
    "peft all-linear": {"lora_target_modules": "all-linear"},
    "regex q or w2": {"lora_target_modules": r".*\.(q_proj|w2)"},
    "regex experts w1,w3": {"lora_target_modules": r".*experts\.w[13]"},
    "lora_target_linear": {"lora_target_linear": True},
    "linear + w1,w2,w3": {"lora_target_linear": True, "lora_target_modules": ["w1", "w2", "w3"]},
    "router + modules_to_save": {
        "lora_target_modules": ["q_proj", "gate"],
        "lora_modules_to_save": ["lm_head", "embed_tokens"],
    },
    "target_parameters": {"lora_target_modules": ["q_proj"], "lora_target_parameters": ["experts.down_proj"]},
    "dense names and lm_head": {
        "lora_target_modules": ["q_proj", "gate_proj", "up_proj", "down_proj", "lm_head"]
    },
    "w1 alone": {"lora_target_modules": ["q_proj", "w1"]},
}


def peft_counts(architecture: Architecture, document: dict[str, Any]) -> tuple[int, int]:
    """(peft's trainable, peft's all parameters), with the targets axolotl would hand it."""
    from accelerate import init_empty_weights
    from axolotl.loaders.adapter import find_all_linear_names
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(AutoConfig.for_model(**architecture.hf_config()))
    targets = document.get("lora_target_modules") or []
    if document.get("lora_target_linear"):
        targets = sorted(
            {*([targets] if isinstance(targets, str) else targets), *find_all_linear_names(model)}
        )
    config = LoraConfig(
        r=document["lora_r"],
        lora_alpha=8,
        lora_dropout=0.0,
        target_modules=targets,
        target_parameters=document.get("lora_target_parameters") or [],
        modules_to_save=document.get("lora_modules_to_save"),
    )
    trainable, total = get_peft_model(model, config).get_nb_trainable_parameters()
    return trainable, total


@pytest.mark.parametrize("kind", list(ARCHITECTURES))
@pytest.mark.parametrize("case", list(DOCUMENTS))
def test_closed_form_equals_peft(kind: str, case: str) -> None:
    pytest.importorskip("axolotl")
    architecture = ARCHITECTURES[kind]
    document = {"adapter": "lora", "lora_r": 4, **DOCUMENTS[case]}
    try:
        theirs: tuple[int, int] | str = peft_counts(architecture, document)
    except ValueError as error:  # peft refuses: the closed form must refuse too
        theirs = f"refused: {error}"
    try:
        count = count_parameters(architecture, document)
        ours: tuple[int, int] | str = (count.trainable, count.peft_total)
    except CountError as error:
        ours = f"refused: {error}"
    assert isinstance(ours, str) == isinstance(theirs, str), (ours, theirs)
    if not isinstance(ours, str):
        assert ours == theirs
