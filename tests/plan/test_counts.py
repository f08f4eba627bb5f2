"""Closed-form parameter counts against numbers derived independently of count_parameters.

The full-size figures are worked out by hand below from each model's published config.json, and measured
by peft on the meta device in the axolotl tier (tests/truth/test_truth_architecture.py); the small-config
figures are worked out in each test from the shapes, by hand.
"""

from __future__ import annotations

import pytest
from mft_recipes_catalogue import ARCHITECTURES
from mft_recipes_plan.counts import CountError, active_parameters, count_parameters

from mft_recipes.architectures import Architecture

CATALOGUE = {architecture.name: architecture for architecture in ARCHITECTURES}
ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]
EXPERTS_AS_PARAMETERS = ["mlp.experts.gate_up_proj", "mlp.experts.down_proj"]

# Model, total, LoRA r=16 on q,k,v,o, + experts as peft converts w1,w2,w3 (or the dense MLP gate,up,down
# for Mistral), + experts via target_parameters at r. From config.json: V vocabulary, H hidden, I
# intermediate, L layers, nh and nkv heads of hd=128, E experts (Mistral 7B v0.3: 32768, 4096, 14336, 32,
# 32, 8; Mixtral 8x7B: 32000, 4096, 14336, 32, 32, 8, E=8; 8x22B: 32768, 6144, 16384, 56, 48, 8, E=8):
# - total = 2·V·H (untied embeddings and lm_head) + H (final norm) + L·(attention 2·H·nh·hd + 2·H·nkv·hd,
#   MLP 3·H·I, or E·3·H·I + E·H with the router, norms 2·H);
# - attention LoRA = L·r·[(H + nh·hd) + 2·(H + nkv·hd) + (nh·hd + H)], 13,631,488 on 7B and 8x7B;
# - + dense MLP L·3·r·(H + I); + w1,w2,w3 as peft converts them L·E·r·(3H + 5I) (gate_up_proj at rank 2r);
#   + target_parameters at r: L·E·r·(2H + 3I).
META_DEVICE_COUNTS = [
    ("Mistral-7B-v0.3", 7_248_023_552, 13_631_488, 41_943_040, None),
    ("Mixtral-8x7B-v0.1", 46_702_792_704, 13_631_488, 357_564_416, 223_346_688),
    ("Mixtral-8x22B-v0.1", 140_630_071_296, 34_865_152, 754_188_288, 475_267_072),
]


def lora(r: int = 16, **keys: object) -> dict[str, object]:
    return {"adapter": "lora", "lora_r": r, **keys}


@pytest.mark.parametrize(("name", "total", "attention", "with_mlp", "with_parameters"), META_DEVICE_COUNTS)
def test_catalogue_counts_equal_meta_device_counts(name, total, attention, with_mlp, with_parameters):
    architecture = CATALOGUE[name]
    mlp = ["w1", "w2", "w3"] if architecture.is_moe else ["gate_proj", "up_proj", "down_proj"]
    assert count_parameters(architecture, {}).total == total
    assert count_parameters(architecture, {}).trainable == total
    assert count_parameters(architecture, lora(lora_target_modules=ATTENTION)).trainable == attention
    assert count_parameters(architecture, lora(lora_target_modules=ATTENTION + mlp)).trainable == with_mlp
    if with_parameters is not None:
        document = lora(lora_target_modules=ATTENTION, lora_target_parameters=EXPERTS_AS_PARAMETERS)
        assert count_parameters(architecture, document).trainable == with_parameters


def test_lora_target_linear_on_mixtral_trains_attention_only():
    """axolotl's find_all_linear_names sees no Linear in the router or the fused experts."""
    mixtral = CATALOGUE["Mixtral-8x7B-v0.1"]
    count = count_parameters(mixtral, lora(lora_target_linear=True))
    assert count.trainable == 13_631_488
    assert set(count.trainable_groups) == {"lora attention"}


def test_peft_all_linear_on_mixtral_includes_experts_and_router():
    """peft's own `all-linear` adds the v4 names gate, w1, w2, w3 on Mixtral (peft 0.20)."""
    mixtral = CATALOGUE["Mixtral-8x7B-v0.1"]
    router = 32 * 16 * (4096 + 8)  # r·(H + E) per layer
    assert count_parameters(mixtral, lora(lora_target_modules="all-linear")).trainable == 357_564_416 + router


SMALL = Architecture(
    name="small-moe",
    model_type="mixtral",
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    vocab_size=100,
    max_position_embeddings=128,
    tokenizer="v1",
    num_local_experts=4,
    num_experts_per_tok=2,
)


def test_small_moe_by_hand():
    # H=64, I=96, E=4, L=2, q out 64, kv out 32, V=100.
    attention = 64 * 64 * 2 + 32 * 64 * 2  # q, o + k, v
    layer = attention + 4 * 64 + 4 * 2 * 96 * 64 + 4 * 64 * 96 + 2 * 64
    total = 100 * 64 * 2 + 2 * layer + 64
    assert count_parameters(SMALL, {}).total == total
    # r=4 on q, v: 4·(64+64) + 4·(64+32) per layer.
    assert count_parameters(SMALL, lora(4, lora_target_modules=["q_proj", "v_proj"])).trainable == 2 * (
        512 + 384
    )
    # w1+w3 → gate_up_proj at rank 8: 4 experts · 8 · (192 + 64); w2 → down_proj at 4: 4 · 4 · (64 + 96).
    experts = 2 * (4 * 8 * (192 + 64) + 4 * 4 * (64 + 96))
    assert count_parameters(SMALL, lora(4, lora_target_modules=["w1", "w2", "w3"])).trainable == experts
    # modules_to_save trains full copies of lm_head and the embeddings.
    saved = count_parameters(SMALL, lora(4, lora_target_modules=["q_proj"], lora_modules_to_save=["lm_head"]))
    assert saved.trainable == 2 * 512 + 100 * 64
    assert saved.peft_total == total + saved.trainable


def test_active_parameters_count_two_of_eight_experts():
    mixtral = CATALOGUE["Mixtral-8x7B-v0.1"]
    experts = 32 * 8 * 3 * 4096 * 14336
    embeddings = 32000 * 4096
    assert active_parameters(mixtral) == 46_702_792_704 - embeddings - experts + experts // 4


def test_w1_without_w3_is_refused_like_peft():
    with pytest.raises(CountError, match="without also targeting w3"):
        count_parameters(CATALOGUE["Mixtral-8x7B-v0.1"], lora(lora_target_modules=["q_proj", "w1"]))


def test_expert_names_on_dense_mistral_train_nothing_extra():
    mistral = CATALOGUE["Mistral-7B-v0.3"]
    count = count_parameters(mistral, lora(lora_target_modules=[*ATTENTION, "w1", "w2", "w3"]))
    assert count.trainable == 13_631_488


def test_targets_that_match_nothing_are_refused():
    with pytest.raises(CountError, match="match no layer"):
        count_parameters(CATALOGUE["Mistral-7B-v0.3"], lora(lora_target_modules=["w1", "w2", "w3"]))


def test_unfrozen_parameters_train_only_what_they_name():
    mixtral = CATALOGUE["Mixtral-8x7B-v0.1"]
    document = {"unfrozen_parameters": [r"model.layers.\d+.mlp.gate.weight", "^lm_head.weight$"]}
    count = count_parameters(mixtral, document)
    assert count.trainable == 32 * 8 * 4096 + 32000 * 4096
    # axolotl matches at the start of the name: a pattern without the model. prefix matches nothing.
    assert count_parameters(mixtral, {"unfrozen_parameters": ["layers.0.mlp.gate"]}).trainable == 0
