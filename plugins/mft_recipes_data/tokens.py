"""Exact token counts with Mistral's own tokenizers (mistral-common, shipped inside its package).

A conversation is counted as the model sees it, message by message: control tokens, the system prompt
where that tokenizer version puts it, tool definitions and results, EOS after each answer.
`encode_chat_completion` does the same and then decodes every token back to text, which costs more than
the encoding itself (FACTS §4); counting message by message without that decode gives the identical
number at encoding speed. tests/data/test_tokens.py proves the equality against `encode_chat_completion`
for every tokenizer, on fixed and on generated conversations.

Conversations with tools, weights or anything unusual go through mistral-common's own validator,
normalizer and per-message encoders. Plain ones (an optional system message, then user and assistant in
turn), which are most training data, are formatted directly around the text tokenizer's `encode`, as the
instruct tokenizer formats them: building mistral-common's pydantic messages would cost more than the
check's rules put together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mft_recipes.host import Registry

# The tokenizer files inside the mistral-common package, by the names Architecture.tokenizer uses.
TOKENIZER_FILES = {
    "v1": "tokenizer.model.v1",
    "v3": "mistral_instruct_tokenizer_240323.model.v3",
    "tekken": "tekken_240718.json",
}
TOKENIZER_MODELS = {
    "v1": "Mistral 7B v0.1, Mixtral 8x7B",
    "v3": "Mistral 7B v0.3, Mixtral 8x22B",
    "tekken": "Mistral Nemo",
}
# La Plateforme's fine-tunable models. Models newer than Nemo use later tekken versions that
# mistral-common does not ship; Nemo's tekken is the nearest, so their counts are marked inexact.
PLATFORM_MODELS = {
    "open-mistral-7b": ("v3", True),
    "open-mixtral-8x7b": ("v1", True),
    "open-mixtral-8x22b": ("v3", True),
    "open-mistral-nemo": ("tekken", True),
    "mistral-small-latest": ("tekken", False),
    "codestral-latest": ("tekken", False),
    "mistral-large-latest": ("tekken", False),
    "ministral-8b-latest": ("tekken", False),
    "ministral-3b-latest": ("tekken", False),
}
DEFAULT_TOKENIZER = "v3"


class UnknownModelError(ValueError):
    """A --model that names no architecture, La Plateforme model or tokenizer version."""


@dataclass(frozen=True)
class TokenizerChoice:
    """Which tokenizer counts the tokens, why, and whether the count is exact for that model."""

    version: str
    model: str | None
    exact: bool = True

    def describe(self) -> str:
        what = f"mistral-common {self.version} tokenizer ({TOKENIZER_MODELS[self.version]})"
        if self.model is None:
            return f"{what}; no --model or --recipe given"
        return f"{what} for {self.model}" + ("" if self.exact else " (approximate: a newer tokenizer)")


def choose_tokenizer(model: str | None, registry: Registry | None = None) -> TokenizerChoice:
    """The tokenizer for a model: a catalogue architecture or hub id, a local model folder, a La
    Plateforme model name, or a tokenizer version (v1, v3, tekken). None gives the v3 tokenizer."""
    if model is None:
        return TokenizerChoice(DEFAULT_TOKENIZER, None)
    if model in TOKENIZER_FILES:
        return TokenizerChoice(model, model)
    if model in PLATFORM_MODELS:
        version, exact = PLATFORM_MODELS[model]
        return TokenizerChoice(version, model, exact)
    if registry is None:
        from mft_recipes.host import get_registry

        registry = get_registry()
    architecture = registry.find_architecture(model)
    if architecture is None or architecture.tokenizer not in TOKENIZER_FILES:
        raise UnknownModelError(
            f"unknown model {model!r}: give an architecture ({', '.join(sorted(registry.architectures))}), "
            f"its hub id, a local model folder with config.json, a La Plateforme model "
            f"({', '.join(sorted(PLATFORM_MODELS))}) or a tokenizer version (v1, v3, tekken)"
        )
    return TokenizerChoice(architecture.tokenizer, model)


@cache
def load_tokenizer(version: str) -> Any:
    """mistral-common's MistralTokenizer `version`, in finetuning mode (a conversation may, and must,
    end with the assistant)."""
    import mistral_common
    from mistral_common.protocol.instruct.validator import ValidationMode
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    path = Path(mistral_common.__file__).parent / "data" / TOKENIZER_FILES[version]
    return MistralTokenizer.from_file(str(path), mode=ValidationMode.finetuning)


class TokenizerRefused(ValueError):
    """mistral-common cannot encode this conversation for the model (for example tool calls with v1)."""


class ChatTokenCounter:
    """Counts the tokens of chat examples and classifier texts with one Mistral tokenizer."""

    def __init__(self, version: str) -> None:
        from mistral_common.protocol.instruct.messages import (
            AssistantMessage,
            FinetuningAssistantMessage,
            SystemMessage,
            ToolMessage,
            UserMessage,
        )
        from mistral_common.protocol.instruct.request import ChatCompletionRequest
        from mistral_common.protocol.instruct.tool_calls import Tool

        self.version = version
        self.mistral = load_tokenizer(version)
        self.instruct = self.mistral.instruct_tokenizer
        self.text_tokenizer = self.instruct.tokenizer
        self._user, self._assistant, self._tool, self._system = (
            UserMessage,
            AssistantMessage,
            ToolMessage,
            SystemMessage,
        )
        self._finetuning_assistant = FinetuningAssistantMessage
        self._request, self._tool_definition = ChatCompletionRequest, Tool
        self._tools: dict[str, Any] = {}

    def count_text(self, text: str) -> int:
        """Tokens of a plain text (a classifier input) with BOS, as a sequence the model reads."""
        return 1 + len(self.text_tokenizer.encode(text, bos=False, eos=False))

    def count_chat(self, example: dict[str, Any]) -> int:
        """Tokens of a conversation as the model sees it. Raises TokenizerRefused when mistral-common
        cannot encode it. The example must already have passed the chat rules."""
        messages = example["messages"]
        if self.version == "v1" and ("tools" in example or any(m["role"] == "tool" for m in messages)):
            raise TokenizerRefused(
                f"the v1 tokenizer ({TOKENIZER_MODELS['v1']}) has no tool tokens: these models were not "
                "trained for tool calls; drop the tools and tool calls, or use a v3 model"
            )
        try:
            if "tools" not in example and all(_is_plain(message) for message in messages):
                return self._count_plain(messages)
            return self._count_instruct(self._validated_request(example))
        except Exception as error:  # mistral-common raises assertions, ValueErrors and its own exceptions
            raise TokenizerRefused(
                f"mistral-common's {self.version} tokenizer cannot encode it: {error}"
            ) from error

    def _count_plain(self, messages: list[dict[str, Any]]) -> int:
        """A plain conversation (an optional system message, then user and assistant in turn, string
        contents) formatted as mistral-common's instruct tokenizer formats it, without building its
        message objects: BOS; for v1 each user turn as the text `[INST] ... [/INST]` with the system
        prompt before the first one, for v3 and tekken between the [INST] and [/INST] control tokens with
        the system prompt before the last one; each answer followed by EOS (v3 and tekken first strip its
        trailing spaces)."""
        encode = self.text_tokenizer.encode
        v1 = self.version == "v1"
        system = messages[0]["content"] if messages[0]["role"] == "system" else None
        turns = messages[1:] if system is not None else messages
        users = [index for index, message in enumerate(turns) if message["role"] == "user"]
        prompt_at = users[0] if v1 else users[-1]
        total = 1
        for index, message in enumerate(turns):
            content = message["content"]
            if message["role"] == "assistant":
                total += len(encode(content if v1 else content.rstrip(" "), False, False)) + 1
                continue
            if index == prompt_at and system:
                content = f"{system}\n\n{content}"
            total += (
                len(encode(f"[INST] {content} [/INST]", False, False))
                if v1
                else len(encode(content, False, False)) + 2
            )
        return total

    def _validated_request(self, example: dict[str, Any]) -> Any:
        messages = [self._message(message) for message in example["messages"]]
        request = self._request(messages=messages)
        validator = self.mistral._chat_completion_request_validator
        validated = validator.validate_request(request)
        validated.tools = self._validated_tools(example.get("tools"))
        return self.mistral._instruct_request_normalizer.from_chat_completion_request(validated)

    def _validated_tools(self, tools: Any) -> Any:
        """The example's tools as mistral-common Tools, checked by its validator once per distinct list:
        a dataset repeats the same few tool lists, and checking their JSON Schemas is the slow part."""
        if not tools:
            return None
        key = json.dumps(tools, sort_keys=True)
        if key not in self._tools:
            built = [self._tool_definition.model_validate(tool) for tool in tools]
            self.mistral._chat_completion_request_validator._validate_tools(built)
            if len(self._tools) >= 256:
                self._tools.clear()
            self._tools[key] = built
        return self._tools[key]

    def _message(self, message: dict[str, Any]) -> Any:
        role = message["role"]
        if role == "assistant":
            return self._finetuning_assistant.model_validate(
                _fields(message, ("content", "tool_calls", "weight"))
            )
        if role == "tool":
            return self._tool.model_validate(_fields(message, ("content", "tool_call_id", "name")))
        return (self._user if role == "user" else self._system).model_validate(
            {"content": message["content"]}
        )

    def _count_instruct(self, request: Any) -> int:
        """mistral-common's `encode_instruct`, message by message, without decoding the tokens back."""
        instruct = self.instruct
        validate_tool_results = getattr(instruct, "_validate_tool_results", None)
        if validate_tool_results is not None:
            validate_tool_results(request)
        instruct.validate_messages(request.messages)
        first_user, last_user = instruct.find_first_last_user(request)
        total = len(instruct.start())
        for index, message in enumerate(request.messages):
            if isinstance(message, self._user):
                tokens, _, _ = instruct.encode_user_message(
                    message,
                    request.available_tools,
                    index == last_user,
                    index == first_user,
                    system_prompt=request.system_prompt,
                    force_img_first=True,
                    settings=request.settings,
                )
            elif isinstance(message, self._tool):
                tokens, _, _ = instruct.encode_tool_message(message, index < last_user)
            elif isinstance(message, self._assistant):
                tokens = instruct.encode_assistant_message(
                    message, is_before_last_user_message=index < last_user
                )
            else:
                tokens, _ = instruct.encode_system_message(message)
            total += len(tokens)
        return total


_PLAIN_KEYS = frozenset(("role", "content"))


def _fields(message: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: message[key] for key in keys if key in message}


def _is_plain(message: dict[str, Any]) -> bool:
    return message.keys() <= _PLAIN_KEYS and isinstance(message.get("content"), str)
