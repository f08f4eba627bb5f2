"""The chat format a trained model was trained on, found where training left it, so that `export` passes it
on and `eval` and the printed serve command format prompts exactly as training did.

The recipes train Mistral's exact format and axolotl saves it with the model as chat_template.jinja
(mft_recipes_catalogue.chat_format). Where it is found:

1. the adapter's or merged model's folder (axolotl writes the tokenizer, template included, to output_dir);
2. the base model's folder, when it is a local folder with a template;
3. else Mistral's format for the base model's tokenizer version (the catalogue, or a local config.json):
   what the recipes train, and what a base model without a template is prompted with.

When the template is Mistral's format, prompts are encoded by mistral-common itself, as vLLM's
`--tokenizer-mode mistral` encodes a chat request: a Hugging Face tokenizer reading the same text would
cut runs of spaces differently. Any other template is applied by the model's Hugging Face tokenizer.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mft_recipes_catalogue.chat_format import (
    FOLDER_NAMES,
    MistralChat,
    chat_template,
    mistral_version_of,
    tokenizer_path,
)

from mft_recipes import Architectures, get_architectures

TEMPLATE_FILE = "chat_template.jinja"


@dataclass(frozen=True)
class ChatFormat:
    """A chat template, where it came from, and the Mistral tokenizer version when it is Mistral's format."""

    template: str
    source: str
    mistral_version: str | None

    def as_json(self) -> dict[str, Any]:
        return {"source": self.source, "mistral_version": self.mistral_version}


def read_template(folder: str | Path) -> str | None:
    """The chat template a model or adapter folder carries (chat_template.jinja, or tokenizer_config.json)."""
    folder = Path(folder)
    if (folder / TEMPLATE_FILE).is_file():
        return (folder / TEMPLATE_FILE).read_text(encoding="utf-8")
    config = folder / "tokenizer_config.json"
    if config.is_file():
        template = json.loads(config.read_text(encoding="utf-8")).get("chat_template")
        return template if isinstance(template, str) and template else None
    return None


def find_chat_format(
    trained: str | Path | None, base: str, architectures: Architectures | None = None
) -> ChatFormat | None:
    """The chat format of a trained adapter or model folder (`trained`) on `base`, or None when neither
    carries a template and the base's tokenizer version is unknown (among `architectures`, by default the
    registered ones)."""
    for folder, source in ((trained, "the trained folder"), (base, "the base model")):
        if folder is not None and Path(folder).is_dir() and (template := read_template(folder)) is not None:
            return ChatFormat(template, f"{source} ({folder})", mistral_version_of(template))
    architectures = architectures if architectures is not None else get_architectures()
    architecture = architectures.find(base)
    if architecture is None or architecture.tokenizer not in ("v1", "v3"):
        return None
    version = architecture.tokenizer
    source = f"Mistral's {version} format: no template in the trained folder or the base, whose tokenizer is {version}"
    return ChatFormat(chat_template(version), source, version)


def write_chat_format(folder: Path, chat_format: ChatFormat) -> None:
    """Put the chat format in an export folder: chat_template.jinja, and for Mistral's format also
    mistral-common's tokenizer file, which `--tokenizer-mode mistral` reads."""
    (folder / TEMPLATE_FILE).write_text(chat_format.template, encoding="utf-8")
    if chat_format.mistral_version is not None:
        version = chat_format.mistral_version
        shutil.copyfile(tokenizer_path(version), folder / FOLDER_NAMES[version])


class PromptEncoder:
    """Prompt tokens for test conversations in a chat format: mistral-common for Mistral's format, else the
    template through the engine's Hugging Face tokenizer."""

    def __init__(self, chat_format: ChatFormat | None, tokenizer: Any) -> None:
        self.format = chat_format
        self.tokenizer = tokenizer
        self.mistral = (
            MistralChat(chat_format.mistral_version) if chat_format and chat_format.mistral_version else None
        )
        self.template = chat_format.template if chat_format else None

    def prompts(self, conversations: list[tuple[list[dict[str, Any]], list[Any] | None]]) -> list[list[int]]:
        """The prompt of each (messages, tools) conversation, ready for the assistant's answer."""
        if self.mistral is not None:
            return [self.mistral.encode_prompt(messages, tools) for messages, tools in conversations]
        texts = [
            self.tokenizer.apply_chat_template(
                messages, tools=tools, chat_template=self.template, tokenize=False, add_generation_prompt=True
            )
            for messages, tools in conversations
        ]
        return [list(ids) for ids in self.tokenizer(texts, add_special_tokens=False).input_ids]

    def answer(self, messages: list[dict[str, Any]], prompt: list[int], text: str) -> list[int]:
        """The tokens `text` takes as the assistant's answer after `prompt`, end of turn included."""
        conversation = [*messages, {"role": "assistant", "content": text}]
        if self.mistral is not None:
            full = self.mistral.encode({"messages": conversation}).tokens
        else:
            rendered = self.tokenizer.apply_chat_template(
                conversation, chat_template=self.template, tokenize=False
            )
            full = list(self.tokenizer(rendered, add_special_tokens=False).input_ids)
        if full[: len(prompt)] == prompt:
            return list(full[len(prompt) :])
        # A template that writes earlier turns differently once an answer follows.
        return [*self.tokenizer(text, add_special_tokens=False).input_ids, self.tokenizer.eos_token_id]
