"""The proof table in README.md is current and the published config.json fixtures are the catalogue's
architectures (fast tier: no axolotl needed)."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
from mft_recipes_catalogue import ARCHITECTURES, MIXTRAL_8X22B, MIXTRAL_8X22B_COMMUNITY

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


# Catalogue entries whose repository could not be read to vendor its config.json (the catalogue says where
# their values come from instead).
UNPUBLISHED = (MIXTRAL_8X22B_COMMUNITY,)


@pytest.mark.parametrize(
    "architecture",
    [architecture for architecture in ARCHITECTURES if architecture not in UNPUBLISHED],
    ids=lambda architecture: architecture.name,
)
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


def test_the_community_8x22b_differs_from_mistrals_in_its_vocabulary_only() -> None:
    """mistral-community/Mixtral-8x22B-v0.1 (axolotl's examples) is the torrent checkpoint: Mistral's
    layers, the 32000-token v1 vocabulary."""
    community, mistral = asdict(MIXTRAL_8X22B_COMMUNITY), asdict(MIXTRAL_8X22B)
    differing = {key for key in community if community[key] != mistral[key]}
    assert differing == {"name", "hub_ids", "vocab_size", "tokenizer"}
    assert (community["vocab_size"], community["tokenizer"]) == (32000, "v1")
    assert not (PUBLISHED / MIXTRAL_8X22B_COMMUNITY.name).exists()


def test_the_parity_table_shows_both_pinned_axolotls() -> None:
    """The counts come from the parity test of each axolotl session (which fails when they differ), so a
    pin that moves needs them measured again; with the pinned axolotl nothing it refuses gets through."""
    recorded = proof_table.committed_counts()
    assert {proof_table.pinned("AXOLOTL"), proof_table.pinned("AXOLOTL_LATEST")} <= set(recorded)
    assert recorded[proof_table.pinned("AXOLOTL")]["all"]["false accept"] == 0
