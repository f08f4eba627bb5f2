"""Built-in catalogue: the Mistral architectures (published config values) and the recipes in recipes/."""

from __future__ import annotations

from typing import Any

from mft_recipes.architectures import Architecture
from mft_recipes.hookspecs import hookimpl
from mft_recipes.resources import packaged_dir

# Values from each model's published config.json.
ARCHITECTURES = (
    Architecture(
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
    ),
    Architecture(
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
    ),
    Architecture(
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
    ),
)


@hookimpl
def register_architectures(register: Any) -> None:
    for architecture in ARCHITECTURES:
        register(architecture)


@hookimpl
def register_recipes(register: Any) -> None:
    for path in sorted(packaged_dir("recipes").glob("*.yaml")):
        register(path)
