"""The proof table in README.md is current and the published config.json fixtures are the catalogue's
architectures (fast tier: no axolotl needed)."""

from __future__ import annotations

import json

import pytest
from mft_recipes_catalogue import ARCHITECTURES

from mft_recipes.architectures import Architecture
from tests.truth import proof_table
from tests.truth.cases import PUBLISHED, axolotl_recipes


def test_the_proof_table_is_current() -> None:
    text = proof_table.PROOF.read_text(encoding="utf-8")
    assert proof_table.updated(text) == text, "regenerate it: python -m tests.truth.proof_table"


def test_the_table_lists_every_axolotl_recipe() -> None:
    table = proof_table.table()
    assert {recipe.name for recipe in axolotl_recipes()} == {
        line.split("`")[1] for line in table.splitlines() if line.startswith("| `")
    }


@pytest.mark.parametrize("architecture", ARCHITECTURES, ids=lambda architecture: architecture.name)
def test_each_architecture_has_its_published_config_and_they_agree(architecture: Architecture) -> None:
    published = json.loads((PUBLISHED / architecture.name / "config.json").read_text())
    read = Architecture.from_hf_config(architecture.name, published)
    shape = (
        "model_type",
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "vocab_size",
        "max_position_embeddings",
        "num_local_experts",
        "num_experts_per_tok",
        "tie_word_embeddings",
        "tokenizer",
        "rope_theta",
        "rms_norm_eps",
    )
    assert {key: getattr(read, key) for key in shape} == {key: getattr(architecture, key) for key in shape}
    assert read.attention_head_dim == architecture.attention_head_dim
