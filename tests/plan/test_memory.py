"""Memory terms against values worked out by hand for small configs (docs/plan.md has the model)."""

from __future__ import annotations

import pytest
from mft_recipes_catalogue import ARCHITECTURES
from mft_recipes_plan.counts import count_parameters
from mft_recipes_plan.memory import TrainingSetup, estimate_memory

from mft_recipes.architectures import Architecture

GIB = 2**30
SMALL = Architecture(
    name="small",
    model_type="mistral",
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    vocab_size=256,
    max_position_embeddings=128,
    tokenizer="v1",
)
SMALL_TOTAL = 106_816  # 256·64 embeddings + 2 × 36,992 per layer + 64 final norm + 256·64 lm_head
MIXTRAL = next(a for a in ARCHITECTURES if a.name == "Mixtral-8x7B-v0.1")


def plan(architecture: Architecture, document: dict, gpus: int = 1):
    setup = TrainingSetup.from_document(document)
    return estimate_memory(architecture, count_parameters(architecture, document), setup, gpus).terms


def test_small_lora_by_hand():
    document = {
        "adapter": "lora",
        "lora_r": 8,
        "lora_target_modules": ["q_proj", "v_proj"],
        "lora_dropout": 0.0,
        "bf16": "auto",
        "sequence_len": 32,
        "micro_batch_size": 2,
        "gradient_checkpointing": True,
        "flash_attention": True,
        "optimizer": "adamw_torch_fused",
    }
    terms = plan(SMALL, document)
    lora = 2 * (8 * (64 + 64) + 8 * (64 + 32))  # 3,584 trainable
    assert terms["weights 16-bit"] == SMALL_TOTAL * 2
    assert terms["trainable weights"] == lora * 4  # fp32 adapters
    assert terms["gradients"] == lora * 4
    assert terms["optimizer states"] == lora * 2 * 4  # AdamW: two fp32 states
    # 64 tokens. Per token and layer: norms 2·4·64 = 512, flash-attention q, k, v, out 2·(64+32+32+64)
    # = 384, MLP gate, up, SiLU 6·128 = 768, LoRA on q and v: (2·64 + 2·8) each = 288 → 1,952 bytes.
    layer = 1_952 * 64
    checkpoints = 2 * 2 * 64 * 64  # layers × 2 bytes × hidden × tokens
    assert terms["activations"] == checkpoints + layer
    assert terms["logits"] == 14 * 256 * 64 - layer  # the loss's peak, less the recomputed layer
    allocated = SMALL_TOTAL * 2 + lora * 16 + checkpoints + 14 * 256 * 64
    assert terms["framework overhead"] == pytest.approx(0.75 * GIB + 0.10 * allocated)


def test_without_gradient_checkpointing_every_layer_keeps_its_activations():
    document = {
        "adapter": "lora",
        "lora_r": 8,
        "lora_target_modules": ["q_proj", "v_proj"],
        "bf16": True,
        "sequence_len": 32,
        "micro_batch_size": 2,
        "flash_attention": True,
        "lora_dropout": 0.1,
    }
    terms = plan(SMALL, document)
    # Dropout adds a 1-byte mask per input feature of q and v: 2 × 64 more bytes per token and layer.
    assert terms["activations"] == 2 * (1_952 + 128) * 64
    assert terms["logits"] == 14 * 256 * 64


def test_full_fine_tune_zero_stages_divide_what_they_shard():
    base = {
        "bf16": True,
        "sequence_len": 32,
        "micro_batch_size": 1,
        "gradient_checkpointing": True,
        "flash_attention": True,
        "optimizer": "adamw_torch_fused",
    }
    n = SMALL_TOTAL
    plain = plan(SMALL, base, gpus=4)
    assert (plain["trainable weights"], plain["gradients"], plain["optimizer states"]) == (
        2 * n,
        2 * n,
        4 * n,
    )

    def zero(stage: int, **offload: bool) -> dict:
        section: dict[str, object] = {"stage": stage}
        section.update({key: {"device": "cpu"} for key, on in offload.items() if on})
        return plan(SMALL, {**base, "deepspeed": {"zero_optimization": section}}, gpus=4)

    one, two, three = zero(1), zero(2), zero(3)
    # 16-bit weights 2 bytes, fp32 gradients 4, fp32 master + two Adam states 12 (DeepSpeed's 18).
    assert (one["trainable weights"], one["gradients"], one["optimizer states"]) == (2 * n, 4 * n, 12 * n / 4)
    assert (two["trainable weights"], two["gradients"], two["optimizer states"]) == (2 * n, n, 12 * n / 4)
    assert (three["trainable weights"], three["gradients"], three["optimizer states"]) == (n / 2, n, 3 * n)
    assert "ZeRO-3 gathered layer" in three and "ZeRO-3 gathered layer" not in two
    offloaded = zero(3, offload_optimizer=True, offload_param=True)
    assert (offloaded["trainable weights"], offloaded["gradients"], offloaded["optimizer states"]) == (
        0,
        0,
        0,
    )


def test_offload_moves_bytes_to_the_cpu():
    document = {
        "bf16": True,
        "deepspeed": {"zero_optimization": {"stage": 3, "offload_optimizer": {"device": "cpu"}}},
    }
    setup = TrainingSetup.from_document(document)
    estimate = estimate_memory(SMALL, count_parameters(SMALL, document), setup, 2)
    assert estimate.cpu_bytes == SMALL_TOTAL * (4 + 12)


def mixtral_qlora(**keys: object) -> dict:
    return {
        "adapter": "qlora",
        "load_in_4bit": True,
        "lora_r": 16,
        "lora_dropout": 0.0,
        "bf16": "auto",
        "lora_target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "w1", "w2", "w3"],
        "sequence_len": 4096,
        "micro_batch_size": 1,
        "gradient_checkpointing": True,
        "flash_attention": True,
        "optimizer": "paged_adamw_8bit",
        **keys,
    }


EXPERTS = 32 * 8 * 3 * 4096 * 14336  # 45,097,156,608 expert parameters of Mixtral-8x7B
NF4 = 0.515869140625  # 4 bits + an 8-bit absmax per 64 + an fp32 absmax per 64·256 weights


def test_mixtral_qlora_quantize_moe_experts_changes_exactly_the_expert_weights():
    quantized = plan(MIXTRAL, mixtral_qlora(quantize_moe_experts=True))
    plain = plan(MIXTRAL, mixtral_qlora())
    # Without it bitsandbytes leaves the fused experts alone and prepare_model_for_kbit_training casts
    # them to fp32; with it they are NF4.
    assert plain["weights fp32"] - quantized["weights fp32"] == EXPERTS * 4
    assert quantized["weights nf4"] - plain["weights nf4"] == pytest.approx(EXPERTS * NF4)
    assert plain["weights 16-bit"] == quantized["weights 16-bit"]
    # Under ZeRO-3 axolotl skips the fp32 cast: the experts (and the router, 32·8·4096) stay 16-bit,
    # sharded over the GPUs.
    sharded = plan(MIXTRAL, mixtral_qlora(deepspeed={"zero_optimization": {"stage": 3}}), gpus=2)
    router = 32 * 8 * 4096
    assert sharded["weights 16-bit"] - quantized["weights 16-bit"] / 2 == (EXPERTS + router) * 2 / 2


def test_mixtral_expert_lora_materializes_one_layer_of_experts_per_copy():
    one_layer = 8 * 3 * 4096 * 14336 * 2  # bytes of one layer's experts in 16-bit
    assert plan(MIXTRAL, mixtral_qlora())["expert weights materialized"] == one_layer
    assert (
        plan(MIXTRAL, mixtral_qlora(quantize_moe_experts=True))["expert weights materialized"]
        == 2 * one_layer
    )
