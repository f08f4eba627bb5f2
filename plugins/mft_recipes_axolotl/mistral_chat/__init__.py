"""axolotl dataset types that train Mistral's exact chat format, one per tokenizer version:

    datasets:
      - path: train.jsonl
        type: mft_recipes_axolotl.mistral_chat.v3   # Mistral 7B v0.3, Mixtral 8x22B (.v1: Mixtral 8x7B)

axolotl imports the module a dataset's `type` names and calls its `load(tokenizer, cfg, ds_cfg)`
(axolotl/prompt_strategies/__init__.py, `load`), then maps the strategy's `tokenize_prompt` over the rows
(axolotl/datasets.py, `TokenizedPromptDataset`). Each row comes out as mistral-common encodes the
conversation, labelled as La Plateforme trains: the assistant messages and their EOS, not those with
`weight: 0` (mft_recipes_catalogue.chat_format). Rows are La Plateforme's format, `{"messages": [...],
"tools": [...]}`, the lines `mft-recipes data check` checks.

Why not axolotl's own `type: chat_template` (docs/chat-format.md): through a Jinja template the text is
right but a Hugging Face tokenizer cuts runs of spaces and literal control strings differently from
mistral-common; with `tokenizer_use_mistral_common` the tokens are right but axolotl finds the turns by
encoding each conversation prefix, and v3 moves the system prompt to the last user turn, so in
multi-turn conversations with a system prompt it labels the wrong tokens.

Nothing here imports axolotl: the strategy has the shape axolotl's dataset wrapper calls.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from mft_recipes_catalogue.chat_format import MistralChat

MESSAGES, TOOLS = "messages", "tools"


def dataset_type(version: str) -> str:
    """The axolotl `type` of a dataset in Mistral's `version` format."""
    return f"{__name__}.{version}"


@cache
def _chat(version: str) -> MistralChat:
    return MistralChat(version)


class MistralChatStrategy:
    """axolotl's prompt tokenizing strategy for Mistral's `version` chat format. Holds only the version,
    so that datasets' worker processes receive it cheaply and load the tokenizer once each."""

    filter_rows = None  # axolotl asks; nothing to filter before tokenizing
    supports_batched = True

    def __init__(self, version: str, *, train_on_inputs: bool = False) -> None:
        self.version = version
        self.train_on_inputs = train_on_inputs

    def tokenize_prompt(self, batch: dict[str, list[Any]]) -> dict[str, list[list[int]]]:
        """A batch of rows (column → values) as input_ids, attention_mask and labels."""
        chat = _chat(self.version)
        rows: dict[str, list[list[int]]] = {"input_ids": [], "attention_mask": [], "labels": []}
        tools = batch.get(TOOLS) or [None] * len(batch[MESSAGES])
        for messages, tools_of_row in zip(batch[MESSAGES], tools, strict=True):
            example: dict[str, Any] = {"messages": [_present(message) for message in messages]}
            if tools_of_row:
                example["tools"] = tools_of_row
            encoded = chat.encode(example)
            rows["input_ids"].append(encoded.tokens)
            rows["attention_mask"].append([1] * len(encoded.tokens))
            rows["labels"].append(list(encoded.tokens) if self.train_on_inputs else encoded.labels)
        return rows


def load_for(version: str, tokenizer: Any, cfg: Any) -> MistralChatStrategy:
    """The strategy, once the model's tokenizer is known to be Mistral's `version` one: the ids the
    strategy writes must name the same pieces in the model's vocabulary (v1 and v3 number them apart)."""
    chat = _chat(version)
    pieces = chat.text_tokenizer
    size = chat.vocabulary_size
    theirs = tokenizer.convert_ids_to_tokens(list(range(min(size, len(tokenizer)))))
    differ = sum(1 for index, piece in enumerate(theirs) if piece != pieces.id_to_piece(index))
    if len(tokenizer) < size or differ:
        raise ValueError(
            f"dataset type {dataset_type(version)} writes the ids of Mistral's {version} tokenizer ({size} "
            f"pieces), but the model's tokenizer ({len(tokenizer)} pieces, {differ} of them different) is "
            "another one. Use the type of the model's tokenizer version (v1: Mixtral 8x7B; v3: Mistral 7B "
            "v0.3, Mixtral 8x22B), or type: chat_template with a template for this tokenizer."
        )
    return MistralChatStrategy(version, train_on_inputs=bool(cfg.get("train_on_inputs")))


def _present(message: dict[str, Any]) -> dict[str, Any]:
    """A message without the keys a dataset row fills with null for messages that lack them."""
    return {key: value for key, value in message.items() if value is not None}
