"""The activation term against what autograd really saves: small Mistral and Mixtral models in bf16 with
peft adapters, one forward pass under autocast on CPU, every tensor saved for backward counted once (by
storage) with torch.autograd.graph.saved_tensors_hooks, parameters excluded.

Two CPU facts are corrected for, not modelled: CPU dropout keeps a 4-byte float mask where CUDA keeps a
1-byte bool one, and nothing here checkpoints (so every layer keeps its activations). The measurement is a
few percent above the model: it also counts the per-head logsumexp, the RoPE tables, the router's top-k
indices and autocast's bf16 copies of the adapter weights, which the model leaves out (they are larger
relative to these tiny layers than to a 7B one)."""

from __future__ import annotations

from typing import Any

import pytest
from mft_recipes_plan.counts import count_parameters
from mft_recipes_plan.memory import (
    TrainingSetup,
    activation_bytes_per_token_layer,
    materialized_expert_bytes,
)

from mft_recipes.architectures import Architecture

pytestmark = pytest.mark.axolotl

SHAPE: dict[str, Any] = {
    "hidden_size": 256,
    "intermediate_size": 512,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 64,
    "vocab_size": 1000,
    "max_position_embeddings": 512,
    "tokenizer": "v1",
}
DENSE = Architecture(name="small-dense", model_type="mistral", **SHAPE)
MOE = Architecture(
    name="small-moe", model_type="mixtral", num_local_experts=4, num_experts_per_tok=2, **SHAPE
)
ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]
CASES = {
    "dense LoRA everywhere, dropout": (
        DENSE,
        {
            "adapter": "lora",
            "lora_r": 8,
            "lora_dropout": 0.05,
            "lora_target_modules": [*ATTENTION, "gate_proj", "up_proj", "down_proj"],
        },
    ),
    "dense LoRA q,v": (DENSE, {"adapter": "lora", "lora_r": 8, "lora_target_modules": ["q_proj", "v_proj"]}),
    "dense full": (DENSE, {}),
    "MoE LoRA attention": (MOE, {"adapter": "lora", "lora_r": 8, "lora_target_modules": ATTENTION}),
    "MoE LoRA attention + experts": (
        MOE,
        {"adapter": "lora", "lora_r": 8, "lora_target_modules": [*ATTENTION, "w1", "w2", "w3"]},
    ),
    "MoE full": (MOE, {}),
}
BATCH, SEQUENCE = 2, 128


def saved_bytes(architecture: Architecture, document: dict[str, Any]) -> int:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    config = AutoConfig.for_model(**architecture.hf_config())
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16, attn_implementation="sdpa")
    if document.get("adapter"):
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(
            model,
            LoraConfig(
                r=document["lora_r"],
                lora_alpha=16,
                lora_dropout=document.get("lora_dropout", 0.0),
                target_modules=document["lora_target_modules"],
            ),
        )
    model.train()
    model.enable_input_require_grads()  # as training does, so the first layer's norm keeps its input too
    parameters = {parameter.untyped_storage().data_ptr() for parameter in model.parameters()}
    storages: dict[int, int] = {}

    def pack(tensor: Any) -> Any:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in parameters:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    tokens = torch.randint(0, architecture.vocab_size, (BATCH, SEQUENCE))
    with (
        torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor),
        torch.autocast("cpu", torch.bfloat16),
    ):
        model(input_ids=tokens, labels=tokens)
    return sum(storages.values())


def modelled_bytes(architecture: Architecture, document: dict[str, Any]) -> float:
    tokens = BATCH * SEQUENCE
    count = count_parameters(architecture, document)
    setup = TrainingSetup.from_document(
        {
            **document,
            "bf16": True,
            "flash_attention": True,
            "sequence_len": SEQUENCE,
            "micro_batch_size": BATCH,
        }
    )
    layers = architecture.num_hidden_layers
    layer = activation_bytes_per_token_layer(architecture, count, setup) * tokens
    # Outside the layers: the final norm's fp32 input (and, when its weight trains, its normalized input and
    # output), and log_softmax's fp32 output over the vocabulary.
    final_norm = (8 if count.method == "full" else 4) * architecture.hidden_size * tokens
    loss = 4 * architecture.vocab_size * tokens
    cpu_dropout = (
        sum(3 * a.base.shape[-1] for a in count.adapters if a.how == "lora") * tokens
        if setup.lora_dropout
        else 0
    )
    return (
        layers * layer
        + final_norm
        + loss
        + layers * materialized_expert_bytes(architecture, count, setup)
        + cpu_dropout
    )


@pytest.mark.parametrize("case", list(CASES))
def test_activation_model_matches_what_autograd_saves(case: str) -> None:
    pytest.importorskip("peft")
    architecture, document = CASES[case]
    ratio = saved_bytes(architecture, document) / modelled_bytes(architecture, document)
    assert 1.0 <= ratio <= 1.05, f"measured / modelled = {ratio:.3f}"
