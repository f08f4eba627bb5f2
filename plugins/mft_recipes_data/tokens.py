"""Exact token counts with Mistral's own tokenizers (mistral-common, shipped inside its package).

A conversation is counted as the model sees it, message by message: control tokens, the system prompt
where that tokenizer version puts it, tool definitions and results, EOS after each answer.
`encode_chat_completion` does the same and then decodes every token back to text, which costs more than
the encoding itself (benchmarks/data_check.py measures both); counting message by message without that
decode gives the identical number at encoding speed. tests/data/test_tokens.py proves the equality against `encode_chat_completion`
for every tokenizer, on fixed and on generated conversations.

Conversations with tools, weights or anything unusual go through mistral-common's own validator,
normalizer and per-message encoders, in mft_recipes_catalogue.chat_format, which training encodes with
too. Plain ones (an optional system message, then user and assistant in turn), which are most training
data, are formatted directly around the text tokenizer's `encode`, as the instruct tokenizer formats
them: building mistral-common's pydantic messages would cost more than the check's rules put together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mft_recipes_catalogue.chat_format import TOKENIZER_FILES

from mft_recipes import Architectures, get_architectures

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


def choose_tokenizer(model: str | None, architectures: Architectures | None = None) -> TokenizerChoice:
    """The tokenizer for a model: a catalogue architecture or hub id (among `architectures`, by default
    the registered ones), a local model folder, a La Plateforme model name, or a tokenizer version (v1,
    v3, tekken). None gives the v3 tokenizer."""
    if model is None:
        return TokenizerChoice(DEFAULT_TOKENIZER, None)
    if model in TOKENIZER_FILES:
        return TokenizerChoice(model, model)
    if model in PLATFORM_MODELS:
        version, exact = PLATFORM_MODELS[model]
        return TokenizerChoice(version, model, exact)
    architectures = architectures if architectures is not None else get_architectures()
    architecture = architectures.find(model)
    if architecture is None or architecture.tokenizer not in TOKENIZER_FILES:
        raise UnknownModelError(
            f"unknown model {model!r}: give an architecture ({', '.join(sorted(architectures))}), "
            f"its hub id, a local model folder with config.json, a La Plateforme model "
            f"({', '.join(sorted(PLATFORM_MODELS))}) or a tokenizer version (v1, v3, tekken)"
        )
    return TokenizerChoice(architecture.tokenizer, model)


class TokenizerRefused(ValueError):
    """mistral-common cannot encode this conversation for the model (for example tool calls with v1)."""


class ChatTokenCounter:
    """Counts the tokens of chat examples and classifier texts with one Mistral tokenizer."""

    def __init__(self, version: str) -> None:
        from mft_recipes_catalogue.chat_format import MistralChat

        self.version = version
        self.chat = MistralChat(version)
        self.text_tokenizer = self.chat.text_tokenizer

    def count_text(self, text: str) -> int:
        """Tokens of a plain text (a classifier input) with BOS, as a sequence the model reads."""
        return 1 + len(self.text_tokenizer.encode(text, bos=False, eos=False))

    def count_chat(self, example: dict[str, Any]) -> tuple[int, int]:
        """Tokens of a conversation as the model sees it, and the position of its first trained token (0
        when none is: BOS is never trained). Raises TokenizerRefused when mistral-common cannot encode
        it. The example must already have passed the chat rules."""
        messages = example["messages"]
        if self.version == "v1" and ("tools" in example or any(m["role"] == "tool" for m in messages)):
            raise TokenizerRefused(
                f"the v1 tokenizer ({TOKENIZER_MODELS['v1']}) has no tool tokens: these models were not "
                "trained for tool calls; drop the tools and tool calls, or use a v3 model"
            )
        try:
            if "tools" not in example and all(_is_plain(message) for message in messages):
                return self._count_plain(messages)
            encoded = self.chat.encode(example)
            return len(encoded.tokens), encoded.first_trained or 0
        except Exception as error:  # mistral-common raises assertions, ValueErrors and its own exceptions
            raise TokenizerRefused(
                f"mistral-common's {self.version} tokenizer cannot encode it: {error}"
            ) from error

    def _count_plain(self, messages: list[dict[str, Any]]) -> tuple[int, int]:
        """A plain conversation (an optional system message, then user and assistant in turn, string
        contents) formatted as mistral-common's instruct tokenizer formats it, without building its
        message objects: BOS; for v1 each user turn as the text `[INST] ... [/INST]` with the system
        prompt before the first one, for v3 and tekken between the [INST] and [/INST] control tokens with
        the system prompt before the last one; each answer followed by EOS (v3 and tekken first strip its
        trailing spaces). Plain answers carry no weight, so the first one is the first trained."""
        encode = self.text_tokenizer.encode
        v1 = self.version == "v1"
        system = messages[0]["content"] if messages[0]["role"] == "system" else None
        turns = messages[1:] if system is not None else messages
        users = [index for index, message in enumerate(turns) if message["role"] == "user"]
        prompt_at = users[0] if v1 else users[-1]
        total, trained_from = 1, 0
        for index, message in enumerate(turns):
            content = message["content"]
            if message["role"] == "assistant":
                trained_from = trained_from or total
                total += len(encode(content if v1 else content.rstrip(" "), False, False)) + 1
                continue
            if index == prompt_at and system:
                content = f"{system}\n\n{content}"
            total += (
                len(encode(f"[INST] {content} [/INST]", False, False))
                if v1
                else len(encode(content, False, False)) + 2
            )
        return total, trained_from


_PLAIN_KEYS = frozenset(("role", "content"))


def _is_plain(message: dict[str, Any]) -> bool:
    return message.keys() <= _PLAIN_KEYS and isinstance(message.get("content"), str)
