"""Conversations that exercise every part of Mistral's chat format, for the tiers that prove the format
(fast tier, axolotl preprocess, vLLM eval), and mistral-common's own encoding of them as the reference.

System prompts (which v1 and v3 put in different places), multi-turn conversations, `weight: 0` answers,
tool calls and their results (v3 only: v1 has no tool tokens), unicode, and the whitespace and literal
control strings on which a Hugging Face tokenizer parts from sentencepiece.

The reference is `MistralTokenizer.encode_chat_completion` in finetuning mode, mistral-common's public
entry point, not the message-by-message encoding the code under test uses.
"""

from __future__ import annotations

from functools import cache
from typing import Any

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["C", "F"]}},
                "required": ["city"],
            },
        },
    }
]


def _turns(*texts: str, system: str | None = None) -> dict[str, Any]:
    messages = [{"role": "system", "content": system}] if system else []
    messages += [{"role": ("user", "assistant")[i % 2], "content": text} for i, text in enumerate(texts)]
    return {"messages": messages}


def _call(call_id: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": arguments}}


PLAIN = [
    _turns("What is 2 plus 3?", "2 plus 3 is 5."),
    _turns("Name a colour.", "Blue.", system="You are terse."),
    _turns("Hi", "Hello!", "How are you?", "Fine, thanks."),
    _turns("One?", "Un.", "Two?", "Deux.", "Three?", "Trois.", system="Answer in French."),
    {
        "messages": [
            {"role": "user", "content": "A first draft?"},
            {"role": "assistant", "content": "A bad draft.", "weight": 0},
            {"role": "user", "content": "Better?"},
            {"role": "assistant", "content": "A good answer.", "weight": 1},
        ]
    },
    {
        "messages": [
            {"role": "system", "content": "Be kind."},
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": "y", "weight": 0},
            {"role": "user", "content": "z"},
            {"role": "assistant", "content": "w"},
        ]
    },
    _turns("Ünïcödé: 漢字, emoji 🤖👩‍👩‍👧, Ω≈ç√", "日本語のテキスト — ok ✓"),
    _turns("  leading and  double  spaces\tand a tab", "def f(x):\n    return  x\n\n\nend  "),
    _turns("\n\nnewlines first\r\nand crlf\n", " a leading space"),
    _turns("literal [INST] and </s> and <s> in text", "[/INST] literal too </s>"),
    _turns("trailing spaces   ", "answer with trailing spaces   ", system="  a spaced  system prompt "),
]
WITH_TOOLS = [
    {
        "tools": TOOLS,
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "tool_calls": [_call("abc123def", '{"city": "Paris"}')]},
            {"role": "tool", "tool_call_id": "abc123def", "content": '{"temp": 21}'},
            {"role": "assistant", "content": "It is 21 degrees in Paris."},
        ],
    },
    {
        "tools": TOOLS,
        "messages": [
            {"role": "system", "content": "Use the tools."},
            {"role": "user", "content": "Lyon, in Fahrenheit?"},
            {"role": "assistant", "tool_calls": [_call("Z9y8X7w6V", '{"city": "Lyon", "unit": "F"}')]},
            {"role": "tool", "tool_call_id": "Z9y8X7w6V", "content": "not json: 70"},
            {"role": "assistant", "content": "70 °F.", "weight": 0},
            {"role": "user", "content": "And Nice?"},
            {"role": "assistant", "tool_calls": [_call("Q1w2E3r4T", '{"city": "Nice"}')]},
            {"role": "tool", "tool_call_id": "Q1w2E3r4T", "content": '{"temp": 24}'},
            {"role": "assistant", "content": "24 degrees in Nice."},
        ],
    },
]


def conversations(version: str) -> list[dict[str, Any]]:
    """Every conversation the `version` tokenizer can encode (v1 has no tool tokens)."""
    return PLAIN + (WITH_TOOLS if version != "v1" else [])


# mistral-common's own tokenizer files, loaded here rather than through the code under test.
FILES = {
    "v1": "tokenizer.model.v1",
    "v3": "mistral_instruct_tokenizer_240323.model.v3",
    "tekken": "tekken_240718.json",
}


@cache
def reference_tokenizer(version: str, *, finetuning: bool = True) -> Any:
    """mistral-common's MistralTokenizer `version`: finetuning mode for conversations ending with an
    answer, test mode for prompts."""
    from pathlib import Path

    import mistral_common
    from mistral_common.protocol.instruct.validator import ValidationMode
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    path = Path(mistral_common.__file__).parent / "data" / FILES[version]
    mode = ValidationMode.finetuning if finetuning else ValidationMode.test
    return MistralTokenizer.from_file(str(path), mode=mode)


# The keys of each role's message that La Plateforme's published reader takes (mistral-finetune,
# finetune/data/tokenize.py, `build_instruct_sample`: it builds each mistral-common message from these and
# never looks at any other key). The recipes' axolotl dataset type reads the same ones; a message's other
# keys are dropped, never refused, so they are left out of the reference too.
READ_KEYS = {
    "system": ("content",),
    "user": ("content",),
    "assistant": ("content", "tool_calls", "weight"),
    "tool": ("content", "tool_call_id", "name"),
}


def reference_tokens(version: str, example: dict[str, Any]) -> list[int]:
    """mistral-common's `encode_chat_completion` of the example, in finetuning mode, as the trainers read
    it (READ_KEYS)."""
    from mistral_common.protocol.instruct.messages import (
        FinetuningAssistantMessage,
        SystemMessage,
        ToolMessage,
        UserMessage,
    )
    from mistral_common.protocol.instruct.request import ChatCompletionRequest
    from mistral_common.protocol.instruct.tool_calls import Tool

    classes: dict[str, Any] = {
        "system": SystemMessage,
        "user": UserMessage,
        "assistant": FinetuningAssistantMessage,
        "tool": ToolMessage,
    }
    messages = [
        classes[message["role"]].model_validate(
            {key: message[key] for key in READ_KEYS[message["role"]] if key in message}
        )
        for message in example["messages"]
    ]
    tools = [Tool.model_validate(tool) for tool in example.get("tools", [])] or None
    request = ChatCompletionRequest(messages=messages, tools=tools)
    return list(reference_tokenizer(version).encode_chat_completion(request).tokens)


def reference_prompt(version: str, messages: list[dict[str, Any]], tools: Any = None) -> list[int]:
    """mistral-common's `encode_chat_completion` of a conversation to answer, in test mode (what a chat
    request to a model becomes; a request carries no training weights)."""
    from mistral_common.protocol.instruct.request import ChatCompletionRequest

    history = [{key: value for key, value in message.items() if key != "weight"} for message in messages]
    request: Any = ChatCompletionRequest.model_validate({"messages": history, "tools": tools})
    return list(reference_tokenizer(version, finetuning=False).encode_chat_completion(request).tokens)


def trained_spans(labels: list[int], ignored: int = -100) -> list[tuple[int, int]]:
    """The (start, end) ranges of consecutive trained positions."""
    spans: list[tuple[int, int]] = []
    for index, label in enumerate(labels):
        if label == ignored:
            continue
        if spans and spans[-1][1] == index:
            spans[-1] = (spans[-1][0], index + 1)
        else:
            spans.append((index, index + 1))
    return spans


def expected_trained_texts(version: str, example: dict[str, Any]) -> list[str]:
    """What each trained span must decode to: every assistant message without weight 0, its text (v3
    strips trailing spaces) or its tool calls, then EOS. Written from the format's definition (La
    Plateforme trains each assistant message and its end of turn), not from the code under test."""
    import json

    texts = []
    for message in example["messages"]:
        if message["role"] != "assistant" or message.get("weight") == 0:
            continue
        if message.get("tool_calls"):
            calls = [
                {
                    "name": call["function"]["name"],
                    "arguments": json.loads(call["function"]["arguments"]),
                    "id": call["id"],
                }
                for call in message["tool_calls"]
            ]
            texts.append("[TOOL_CALLS]" + json.dumps(calls, ensure_ascii=False) + "</s>")
        else:
            content = message["content"]
            texts.append((content if version == "v1" else content.rstrip(" ")) + "</s>")
    return texts


def decode(version: str, tokens: list[int]) -> str:
    """The text of tokens as mistral-common decodes them, each control token written by its name."""
    from itertools import groupby

    tokenizer = reference_tokenizer(version).instruct_tokenizer.tokenizer
    parts = []
    for special, run in groupby(tokens, key=tokenizer.is_special):
        ids = list(run)
        parts += [tokenizer.id_to_piece(token) for token in ids] if special else [tokenizer.decode(ids)]
    return "".join(parts)
