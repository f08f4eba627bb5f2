"""The chat format of axolotl configs: every recipe writes Mistral's exact format for its model's tokenizer
version, `chat_template=tokenizer_default` is refused where the tokenizer has no template, and `validate`
catches hand-written configs that would stop at axolotl's data loading or train another format than the
one saved with the model. The dataset type's strategy is run here as axolotl's dataset wrapper calls it;
the truth tier runs it inside `axolotl preprocess`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mft_recipes_axolotl.chat_format import SHIPS_CHAT_TEMPLATE
from mft_recipes_axolotl.mistral_chat import MistralChatStrategy, dataset_type
from mft_recipes_catalogue.chat_format import chat_template

from mft_recipes.host import get_registry
from mft_recipes.render import render_recipe
from mft_recipes.validation import validate_document
from tests.conversations import conversations

REGISTRY = get_registry()
AXOLOTL_RECIPES = [recipe for recipe in REGISTRY.recipes.values() if recipe.target == "axolotl"]


def problems(config: dict[str, Any]) -> dict[str, tuple[str, str]]:
    found = validate_document(config, "axolotl", REGISTRY)
    return {p.code: (p.severity, p.message) for p in found if p.source != "schema"}


def chat_config(base_model: str, **changes: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "base_model": base_model,
        "datasets": [{"path": "train.jsonl", "type": "chat_template"}],
        "sequence_len": 2048,
        "micro_batch_size": 1,
        "gradient_accumulation_steps": 1,
        "num_epochs": 1,
        "learning_rate": 1e-5,
        "output_dir": "./out",
    }
    config.update(changes)
    return config


@pytest.mark.parametrize("recipe", AXOLOTL_RECIPES, ids=[recipe.name for recipe in AXOLOTL_RECIPES])
def test_every_recipe_trains_and_saves_mistral_format_of_its_tokenizer_version(recipe: Any) -> None:
    version = REGISTRY.architectures[recipe.model].tokenizer
    document = render_recipe(recipe, {"dataset": "train.jsonl"}, REGISTRY).document
    assert [entry["type"] for entry in document["datasets"]] == [dataset_type(version)]
    assert (document["chat_template"], document["chat_template_jinja"]) == ("jinja", chat_template(version))


def test_the_format_follows_a_base_model_of_another_tokenizer_version(tmp_path: Path) -> None:
    """mixtral-moe names Mixtral 8x7B (v1); rendered on Mixtral 8x22B (v3) it writes v3."""
    overrides = {"dataset": "t.jsonl", "base_model": "mistralai/Mixtral-8x22B-v0.1"}
    document = render_recipe(REGISTRY.recipes["mixtral-moe"], overrides, REGISTRY).document
    assert document["datasets"][0]["type"] == dataset_type("v3")
    assert document["chat_template_jinja"] == chat_template("v3")


def test_tokenizer_default_is_refused_on_a_base_model_and_says_what_to_write() -> None:
    rendered = render_recipe(
        REGISTRY.recipes["mistral-7b-lora"],
        {"dataset": "t.jsonl", "chat_template": "tokenizer_default"},
        REGISTRY,
    )
    [error] = rendered.errors
    assert error.code == "chat-template-missing" and error.path == ("datasets", 0, "type")
    assert "mistralai/Mistral-7B-v0.3" in error.message and dataset_type("v3") in error.message


def test_tokenizer_default_renders_for_an_instruct_model() -> None:
    overrides = {
        "dataset": "t.jsonl",
        "chat_template": "tokenizer_default",
        "base_model": "mistralai/Mixtral-8x7B-Instruct-v0.1",
    }
    rendered = render_recipe(REGISTRY.recipes["mixtral-moe"], overrides, REGISTRY)
    assert rendered.errors == []
    assert rendered.document["chat_template"] == "tokenizer_default"
    assert rendered.document["datasets"][0]["type"] == "chat_template"
    assert "chat_template_jinja" not in rendered.document


@pytest.mark.parametrize("repo", sorted(SHIPS_CHAT_TEMPLATE))
def test_type_chat_template_without_a_template_is_refused_on_base_repositories(repo: str) -> None:
    found = problems(chat_config(repo))
    assert ("chat-template-missing" in found) is not SHIPS_CHAT_TEMPLATE[repo]


@pytest.mark.parametrize(
    "changes",
    [
        {"chat_template": "chatml"},
        {"chat_template": "jinja", "chat_template_jinja": "{{ messages }}"},
        {"chat_template_jinja": "{{ messages }}"},
        {"datasets": [{"path": "t.jsonl", "type": "chat_template", "chat_template": "chatml"}]},
        {"datasets": [{"path": "t.jsonl", "type": "alpaca"}]},
        {"chat_template": "tokenizer_default_fallback_chatml"},
    ],
)
def test_a_config_that_brings_its_template_passes(changes: dict[str, Any]) -> None:
    assert "chat-template-missing" not in problems(chat_config("mistralai/Mistral-7B-v0.3", **changes))


def test_an_explicit_tokenizer_default_is_refused_too() -> None:
    found = problems(chat_config("mistralai/Mixtral-8x7B-v0.1", chat_template="tokenizer_default"))
    assert "mft_recipes_axolotl.mistral_chat.v1" in found["chat-template-missing"][1]


def test_a_local_folder_is_judged_by_its_tokenizer_files(tmp_path: Path) -> None:
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<s>"}))
    assert "chat-template-missing" in problems(chat_config(str(tmp_path)))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ messages }}"}))
    assert "chat-template-missing" not in problems(chat_config(str(tmp_path)))
    (tmp_path / "tokenizer_config.json").write_text("{}")
    (tmp_path / "chat_template.jinja").write_text("{{ messages }}")
    assert "chat-template-missing" not in problems(chat_config(str(tmp_path)))
    # tokenizer_config (the tokenizer's own folder) is what axolotl loads the tokenizer from
    elsewhere = tmp_path / "model"
    elsewhere.mkdir()
    (elsewhere / "tokenizer.json").write_text("{}")
    assert "chat-template-missing" in problems(chat_config(str(elsewhere)))
    assert "chat-template-missing" not in problems(
        chat_config(str(elsewhere), tokenizer_config=str(tmp_path))
    )


def test_an_unknown_hub_id_or_a_folder_without_tokenizer_is_not_judged(tmp_path: Path) -> None:
    assert "chat-template-missing" not in problems(chat_config("someone/some-model"))
    assert "chat-template-missing" not in problems(chat_config(str(tmp_path)))


def mistral_config(base_model: str, version: str, **changes: Any) -> dict[str, Any]:
    settings = {"chat_template": "jinja", "chat_template_jinja": chat_template(version), **changes}
    return chat_config(base_model, datasets=[{"path": "t.jsonl", "type": dataset_type(version)}], **settings)


def test_a_mistral_chat_type_of_the_model_version_passes() -> None:
    assert problems(mistral_config("mistralai/Mixtral-8x7B-v0.1", "v1")) == {}
    assert problems(mistral_config("mistralai/Mistral-7B-Instruct-v0.3", "v3")) == {}


def test_a_mistral_chat_type_of_another_version_is_refused() -> None:
    found = problems(
        mistral_config("mistralai/Mixtral-8x7B-v0.1", "v3", chat_template_jinja=chat_template("v1"))
    )
    severity, message = found["mistral-chat-type"]
    assert severity == "error" and "write type: mft_recipes_axolotl.mistral_chat.v1" in message


def test_an_unknown_mistral_chat_version_is_refused_with_the_types() -> None:
    config = mistral_config("mistralai/Mistral-7B-v0.3", "v3")
    config["datasets"][0]["type"] = dataset_type("v2")
    assert "mft_recipes_axolotl.mistral_chat.v1" in problems(config)["mistral-chat-type"][1]


@pytest.mark.parametrize(
    "changes", [{"chat_template": "tokenizer_default"}, {"chat_template_jinja": chat_template("v1")}]
)
def test_saving_another_template_than_the_trained_format_is_a_warning(changes: dict[str, Any]) -> None:
    found = problems(mistral_config("mistralai/Mistral-7B-v0.3", "v3", **changes))
    assert found["chat-template-not-trained"][0] == "warning"


def as_batch(examples: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Rows as a datasets batch: one list per column, None where a row has no value (as datasets fills a
    column a row lacks); messages keep keys other messages have, with null values."""
    keys = {key for example in examples for message in example["messages"] for key in message}
    return {
        "messages": [
            [{key: message.get(key) for key in sorted(keys)} for message in example["messages"]]
            for example in examples
        ],
        "tools": [example.get("tools") for example in examples],
    }


def test_the_strategy_writes_mistral_tokens_and_labels_for_a_batch() -> None:
    pytest.importorskip("mistral_common")
    from mft_recipes_catalogue.chat_format import MistralChat

    examples = conversations("v3")
    rows = MistralChatStrategy("v3").tokenize_prompt(as_batch(examples))
    encoded = [MistralChat("v3").encode(example) for example in examples]
    assert rows["input_ids"] == [e.tokens for e in encoded]
    assert rows["labels"] == [e.labels for e in encoded]
    assert rows["attention_mask"] == [[1] * len(e.tokens) for e in encoded]
    everything = MistralChatStrategy("v3", train_on_inputs=True).tokenize_prompt(as_batch(examples[:1]))
    assert everything["labels"] == everything["input_ids"]
