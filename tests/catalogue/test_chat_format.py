"""Mistral's chat format (mft_recipes_catalogue.chat_format): the tokens equal mistral-common's public
`encode_chat_completion`, and the labels are exactly the assistant messages La Plateforme trains."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mft_recipes_catalogue.chat_format import IGNORED, MistralChat, chat_template, mistral_version_of

from tests.conversations import (
    PLAIN,
    conversations,
    decode,
    expected_trained_texts,
    reference_prompt,
    reference_tokens,
    trained_spans,
)

pytest.importorskip("mistral_common", reason="the chat format encodes with mistral-common (the dev extra)")


@pytest.mark.parametrize("version", ["v1", "v3", "tekken"])
def test_tokens_equal_encode_chat_completion(version: str) -> None:
    chat = MistralChat(version)
    for example in conversations(version):
        assert chat.encode(example).tokens == reference_tokens(version, example), example


@pytest.mark.parametrize("version", ["v1", "v3"])
def test_labels_cover_the_trained_assistant_messages_and_their_eos(version: str) -> None:
    chat = MistralChat(version)
    for example in conversations(version):
        encoded = chat.encode(example)
        spans = trained_spans(encoded.labels)
        assert [decode(version, encoded.tokens[start:end]) for start, end in spans] == (
            expected_trained_texts(version, example)
        ), example
        assert all(encoded.labels[i] in (IGNORED, encoded.tokens[i]) for i in range(len(encoded.tokens)))


def test_an_answer_with_weight_0_is_not_trained() -> None:
    example = PLAIN[4]  # the first answer has weight 0, the second weight 1
    encoded = MistralChat("v3").encode(example)
    spans = trained_spans(encoded.labels)
    assert [decode("v3", encoded.tokens[a:b]) for a, b in spans] == ["A good answer.</s>"]
    assert encoded.first_trained == spans[0][0]
    assert "A bad draft." in decode("v3", encoded.tokens[: spans[0][0]])


def test_nothing_is_trained_when_every_answer_has_weight_0() -> None:
    example = {
        "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo", "weight": 0}]
    }
    encoded = MistralChat("v3").encode(example)
    assert set(encoded.labels) == {IGNORED} and encoded.first_trained is None


@pytest.mark.parametrize("version", ["v1", "v3"])
def test_a_prompt_is_encoded_as_a_chat_request_to_answer(version: str) -> None:
    chat = MistralChat(version)
    for example in conversations(version):
        prompt: list[dict[str, Any]] = example["messages"][:-1]
        expected = reference_prompt(version, prompt, example.get("tools"))
        assert chat.encode_prompt(prompt, example.get("tools")) == expected
        # What the model answers continues the prompt: training and generation see the same tokens.
        assert chat.encode(example).tokens[: len(expected)] == expected


def test_v1_cannot_encode_tool_calls() -> None:
    with pytest.raises(Exception, match=r"(?i)tool"):
        MistralChat("v1").encode(conversations("v3")[-1])


@pytest.mark.parametrize("version", ["v1", "v3"])
@settings(max_examples=40, deadline=None)
@given(
    system=st.none() | st.text(min_size=1).filter(str.strip),
    texts=st.lists(st.text(min_size=1).filter(str.strip), min_size=2, max_size=6).filter(
        lambda t: len(t) % 2 == 0
    ),
    weights=st.lists(st.sampled_from([None, 0, 1]), min_size=3, max_size=3),
)
def test_any_text_encodes_as_mistral_common_does(
    version: str, system: str | None, texts: list[str], weights: list[Any]
) -> None:
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for index, text in enumerate(texts):
        message: dict[str, Any] = {"role": ("user", "assistant")[index % 2], "content": text}
        if index % 2 and weights[index // 2 % 3] is not None:
            message["weight"] = weights[index // 2 % 3]
        messages.append(message)
    example = {"messages": messages}
    encoded = MistralChat(version).encode(example)
    assert encoded.tokens == reference_tokens(version, example)
    spans = [decode(version, encoded.tokens[a:b]) for a, b in trained_spans(encoded.labels)]
    assert spans == expected_trained_texts(version, example)


def test_the_template_is_recognised_as_the_mistral_format_of_its_version() -> None:
    assert [mistral_version_of(chat_template(version)) for version in ("v1", "v3")] == ["v1", "v3"]
    assert mistral_version_of("{{ messages }}") is None
    with pytest.raises(ValueError, match="v1, v3"):
        chat_template("tekken")
