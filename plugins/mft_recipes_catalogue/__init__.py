"""Built-in catalogue: the Mistral architectures (published config values) and the recipes in recipes/."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from mft_recipes import Architecture, hookimpl, packaged_dir

# Values from each model's published config.json (tests/fixtures/published/<name>/config.json). `hub_ids`
# are Mistral's own repositories of the weights (huggingface.co/mistralai): the base model and its
# Instruct fine-tune, which the model card calls "an instruct fine-tuned version" of the base; a fine-tune
# changes the weights, not the config (their config.json have the same shape and vocabulary).
MISTRAL_7B = Architecture(
    name="Mistral-7B-v0.3",
    hub_ids=("mistralai/Mistral-7B-v0.3", "mistralai/Mistral-7B-Instruct-v0.3"),
    model_type="mistral",
    hidden_size=4096,
    intermediate_size=14336,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
    head_dim=128,
    vocab_size=32768,
    max_position_embeddings=32768,
    tokenizer="v3",
)
MIXTRAL_8X7B = Architecture(
    name="Mixtral-8x7B-v0.1",
    hub_ids=("mistralai/Mixtral-8x7B-v0.1", "mistralai/Mixtral-8x7B-Instruct-v0.1"),
    model_type="mixtral",
    hidden_size=4096,
    intermediate_size=14336,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
    head_dim=128,
    vocab_size=32000,
    max_position_embeddings=32768,
    num_local_experts=8,
    num_experts_per_tok=2,
    tokenizer="v1",
)
MIXTRAL_8X22B = Architecture(
    name="Mixtral-8x22B-v0.1",
    hub_ids=("mistralai/Mixtral-8x22B-v0.1", "mistralai/Mixtral-8x22B-Instruct-v0.1"),
    model_type="mixtral",
    hidden_size=6144,
    intermediate_size=16384,
    num_hidden_layers=56,
    num_attention_heads=48,
    num_key_value_heads=8,
    head_dim=128,
    vocab_size=32768,
    max_position_embeddings=65536,
    num_local_experts=8,
    num_experts_per_tok=2,
    tokenizer="v3",
)
# mistral-community/Mixtral-8x22B-v0.1 is the id axolotl's own Mixtral 8x22B examples use (0.19:
# examples/mistral/mixtral/mixtral-8x22b-qlora-fsdp.yml, mixtral_22.yml, bigstral/bigstral-ds-zero3.yaml).
# It is not Mistral's release but the April 2024 torrent checkpoint, converted to transformers by a
# community member before Mistral published its own (the repository's model card says so and points to
# mistralai/). Its config.json is not Mixtral-8x22B-v0.1's: every layer is the same, but the torrent's
# vocabulary has 32000 tokens (Mixtral 8x7B's v1 sentencepiece model), Mistral's release 32768 (v3). So it
# is an architecture of its own. The repository could not be read where this was written; its values are
# as public code that cites it copies them (Cerebras modelzoo's Mixtral 8x22B config: vocab_size 32000;
# scaleapi/llm-engine's hardware tests carry the whole config.json), and models trained from it tokenize
# with v1's ids (koboldcpp issue 1009, WizardLM-2-8x22B). No published fixture backs it (the fixture test
# names it).
MIXTRAL_8X22B_COMMUNITY = replace(
    MIXTRAL_8X22B,
    name="Mixtral-8x22B-v0.1-community",
    hub_ids=("mistral-community/Mixtral-8x22B-v0.1",),
    vocab_size=32000,
    tokenizer="v1",
)
ARCHITECTURES = (MISTRAL_7B, MIXTRAL_8X7B, MIXTRAL_8X22B, MIXTRAL_8X22B_COMMUNITY)


@hookimpl
def register_architectures(register: Any) -> None:
    for architecture in ARCHITECTURES:
        register(architecture)


@hookimpl
def register_recipes(register: Any) -> None:
    for path in sorted(packaged_dir("recipes").glob("*.yaml")):
        register(path)
