"""Token counts equal mistral-common's own encoding of the same conversation (`encode_chat_completion`,
tokenizers loaded in finetuning mode), for every tokenizer the models use, through `check_files`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mft_recipes_data.check import CheckOptions, check_files
from mft_recipes_data.tokens import PLATFORM_MODELS, UnknownModelError, choose_tokenizer

from mft_recipes.architectures import Architecture
from mft_recipes.host import get_registry
from tests.conversations import reference_tokens

from .conftest import chat
from .test_rules import CALL, RESULT, TOOLS, USER, calling

pytest.importorskip("mistral_common")


def reference_count(version: str, example: dict[str, Any]) -> int:
    """The length of mistral-common's own `encode_chat_completion` of the example."""
    return len(reference_tokens(version, example))


CONVERSATIONS = [
    chat("Hello", "Hi! How can I help?"),
    chat("What is 2+2?", "4", system="You are a calculator. Answer with a number only."),
    chat(
        "First question",
        "First answer",
        "Second  question\n\nwith   spaces ",
        "Second answer  ",
        system="Be brief.",
    ),
    chat("Literal [INST] and </s> and <s> in text", "[/INST] stays text too"),
    chat("Ünïcödé — 東京 🚀", "émojis ✅ and tabs\tand\nnewlines"),
    chat("  leading and trailing spaces  ", "  answer with spaces  "),
    {
        "messages": [
            USER,
            {"role": "assistant", "content": "Skip this", "weight": 0},
            USER,
            {"role": "assistant", "content": "Train on this", "weight": 1},
        ]
    },
]
TOOL_CONVERSATIONS = [
    calling(),
    {
        "messages": [
            {"role": "system", "content": "Use tools."},
            *calling()["messages"],
            {"role": "user", "content": "And tomorrow?"},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "Z9y8X7w6V",
                        "type": "function",
                        "function": {
                            "name": "get_weather",
                            "arguments": {"city": "Paris", "day": "tomorrow"},
                        },
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "Z9y8X7w6V", "content": "not json"},
            {"role": "assistant", "content": "Rain."},
        ],
        "tools": TOOLS,
    },
]


@pytest.mark.parametrize("version", ["v1", "v3", "tekken"])
def test_counts_equal_encode_chat_completion(version: str, jsonl: Callable[..., Path]) -> None:
    conversations = CONVERSATIONS + (TOOL_CONVERSATIONS if version != "v1" else [])
    report = check_files([jsonl(*conversations)], CheckOptions(model=version, jobs=1))
    assert report.valid, [str(problem) for problem in report.problems]
    expected = [reference_count(version, example) for example in conversations]
    assert report.token_counts() == expected
    assert report.total_tokens == sum(expected)


@pytest.mark.parametrize("version", ["v1", "v3"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    system=st.none() | st.text(min_size=1).filter(str.strip),
    turns=st.lists(st.text(min_size=1).filter(str.strip), min_size=1, max_size=6),
)
def test_counts_equal_encode_chat_completion_for_any_text(
    version: str, system: str | None, turns: list[str], jsonl: Callable[..., Path]
) -> None:
    example = chat(*turns, *([] if len(turns) % 2 == 0 else ["the end"]), system=system)
    report = check_files([jsonl(example)], CheckOptions(model=version, jobs=1))
    assert report.token_counts() == [reference_count(version, example)]


def test_the_parallel_check_counts_the_same(jsonl: Callable[..., Path]) -> None:
    """Workers in other processes count exactly what one process counts, in the same order."""
    examples = [chat(f"question {number}", "answer " * (number % 7 + 1)) for number in range(300)]
    path = jsonl(*examples)
    serial = check_files([path], CheckOptions(model="v3", jobs=1, chunk_bytes=2048))
    parallel = check_files([path], CheckOptions(model="v3", jobs=2, chunk_bytes=2048))
    assert parallel.as_json() == serial.as_json()
    assert parallel.token_counts() == [reference_count("v3", example) for example in examples]


@pytest.mark.parametrize(
    ("model", "version"),
    [
        ("Mixtral-8x7B-v0.1", "v1"),
        ("mistralai/Mixtral-8x7B-Instruct-v0.1", "v1"),
        ("Mistral-7B-v0.3", "v3"),
        ("Mixtral-8x22B-v0.1", "v3"),
        ("open-mistral-7b", "v3"),
        ("open-mistral-nemo", "tekken"),
        ("tekken", "tekken"),
    ],
)
def test_the_tokenizer_follows_the_model(model: str, version: str) -> None:
    assert choose_tokenizer(model, get_registry().architecture_view).version == version


def test_a_local_model_folder_is_read_from_its_config(tmp_path: Path) -> None:
    mixtral = get_registry().architectures["Mixtral-8x7B-v0.1"]
    (tmp_path / "config.json").write_text(json.dumps(mixtral.hf_config()))
    assert choose_tokenizer(str(tmp_path), get_registry().architecture_view).version == "v1"
    assert Architecture.from_hf_config("x", mixtral.hf_config()).tokenizer == "v1"


def test_models_newer_than_the_shipped_tokenizers_are_marked_inexact() -> None:
    assert not choose_tokenizer("mistral-small-latest").exact
    assert all(choose_tokenizer(model).version for model in PLATFORM_MODELS)


def test_an_unknown_model_is_refused_with_the_choices() -> None:
    with pytest.raises(UnknownModelError, match="open-mistral-7b"):
        choose_tokenizer("llama-3", get_registry().architecture_view)


def test_a_recipe_chooses_the_tokenizer_of_its_model(jsonl: Callable[..., Path]) -> None:
    example = chat("Hello", "Hi there")
    report = check_files([jsonl(example)], CheckOptions(recipe="mixtral-moe", jobs=1))
    assert (report.tokenizer.version, report.tokenizer.model) == ("v1", "Mixtral-8x7B-v0.1")
    assert report.token_counts() == [reference_count("v1", example)]


# Keys the trainers do not read, on every role and at the top, and the same conversation without them.
WITH_KEYS_NOT_READ: dict[str, Any] = {
    "id": 7,
    "tools": TOOLS,
    "messages": [
        {"role": "system", "content": "Use the tools.", "tool_calls": []},
        {"role": "user", "content": "Weather in Paris?", "name": "ann"},
        {"role": "assistant", "tool_calls": [CALL], "tool_call_id": "a1B2c3D4e"},
        {**RESULT, "id": "x"},
        {"role": "assistant", "content": "Sunny.", "source": "human"},
    ],
}
WITHOUT_THEM = {
    "tools": TOOLS,
    "messages": [
        {"role": "system", "content": "Use the tools."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "tool_calls": [CALL]},
        RESULT,
        {"role": "assistant", "content": "Sunny."},
    ],
}


def test_keys_the_trainers_do_not_read_are_warned_about_and_not_counted(jsonl: Callable[..., Path]) -> None:
    """mistral-common's message models refuse a key they do not define (pydantic's extra_forbidden), but
    no trainer hands one over: La Plateforme's published reader (mistral-finetune, finetune/data/tokenize.py,
    `build_instruct_sample`) builds each message from the keys of its role and ignores the rest, and so
    does the recipes' axolotl dataset type (run here as axolotl's dataset wrapper calls it; the truth
    tier's check 6 runs it in `axolotl preprocess`). So the example trains, without those keys: a warning
    for each, and the count of the conversation without them."""
    from mft_recipes_axolotl.mistral_chat import MistralChatStrategy
    from mistral_common.protocol.instruct.messages import SystemMessage
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="extra_forbidden"):
        SystemMessage.model_validate({"content": "Use the tools.", "tool_calls": []})
    report = check_files([jsonl(WITH_KEYS_NOT_READ)], CheckOptions(model="v3", jobs=1))
    assert report.valid
    assert sorted(problem.path for problem in report.problems if problem.code == "W_UNKNOWN_KEY") == sorted(
        [
            ("id",),
            ("messages", 0, "tool_calls"),
            ("messages", 1, "name"),
            ("messages", 2, "tool_call_id"),
            ("messages", 3, "id"),
            ("messages", 4, "source"),
        ]
    )
    expected = reference_tokens("v3", WITHOUT_THEM)
    assert report.token_counts() == [len(expected)]
    batch: dict[str, list[Any]] = {"messages": [WITH_KEYS_NOT_READ["messages"]], "tools": [TOOLS]}
    assert MistralChatStrategy("v3").tokenize_prompt(batch)["input_ids"] == [expected]
