"""Mistral's chat format, one per tokenizer version: the exact tokens, what is trained, and a Jinja
template that renders the same text.

A conversation becomes tokens exactly as Mistral's own library, mistral-common, encodes it for the model's
tokenizer version (Architecture.tokenizer: v1 for Mixtral 8x7B, v3 for Mistral 7B v0.3 and Mixtral
8x22B): BOS; each user turn between [INST] and [/INST] (text in v1, control tokens in v3), the system
prompt before the first user turn (v1) or the last one (v3); each answer followed by EOS (v3 strips its
trailing spaces); in v3, tool definitions, calls and results between their control tokens.
`MistralChat.encode` gives those tokens and the labels La Plateforme trains (mistral-finetune's mask):
every token of each assistant message and its EOS, unless the message has `weight: 0`. Training (the
axolotl dataset type `mft_recipes_axolotl.mistral_chat.v3`), `data check` and `eval` all go through it.

`chat_template(version)` renders the same text as a Jinja chat template, for whatever formats chats with
a Hugging Face tokenizer (transformers, vLLM without `--tokenizer-mode mistral`). Only the text is the
same: a Hugging Face tokenizer cuts runs of spaces differently from sentencepiece and reads a literal
"[INST]" or "</s>" in a message as a control token, so its tokens differ on such text (measured in
docs/chat-format.md). The template covers system, user and assistant messages; tool calls need
mistral-common (`--tokenizer-mode mistral` in vLLM), and the template says so when it meets one.

mistral-common is imported inside the functions that use it: `render` and `validate` never load it.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

# The tokenizer files inside the mistral-common package, by the names Architecture.tokenizer uses.
TOKENIZER_FILES = {
    "v1": "tokenizer.model.v1",
    "v3": "mistral_instruct_tokenizer_240323.model.v3",
    "tekken": "tekken_240718.json",
}
# What a model folder calls each file, for mistral-common's own loaders (vLLM's `--tokenizer-mode mistral`
# picks `tokenizer.model.v*` or `tekken.json` from a folder).
FOLDER_NAMES = {"v1": "tokenizer.model.v1", "v3": "tokenizer.model.v3", "tekken": "tekken.json"}
# The label of a token that is not trained: what transformers' cross-entropy ignores.
IGNORED = -100


def tokenizer_path(version: str) -> Path:
    """Mistral's `version` tokenizer file, as shipped inside the mistral-common package."""
    import mistral_common

    if version not in TOKENIZER_FILES:
        raise ValueError(f"tokenizer {version!r}: expected one of {', '.join(TOKENIZER_FILES)}")
    return Path(mistral_common.__file__).parent / "data" / TOKENIZER_FILES[version]


@cache
def load_tokenizer(version: str, *, finetuning: bool = True) -> Any:
    """mistral-common's MistralTokenizer `version`: in finetuning mode a conversation must end with the
    assistant (training data); in test mode with the user or a tool result (a prompt to answer)."""
    from mistral_common.protocol.instruct.validator import ValidationMode
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    mode = ValidationMode.finetuning if finetuning else ValidationMode.test
    return MistralTokenizer.from_file(str(tokenizer_path(version)), mode=mode)


@dataclass(frozen=True)
class EncodedChat:
    """A conversation's tokens and, position by position, the label trained there (IGNORED if none)."""

    tokens: list[int]
    labels: list[int]

    @property
    def first_trained(self) -> int | None:
        """The position of the first trained token, None when nothing is trained."""
        return next((index for index, label in enumerate(self.labels) if label != IGNORED), None)


class MistralChat:
    """Encodes conversations (`{"messages": [...], "tools": [...]}`, La Plateforme's format) with
    mistral-common's instruct tokenizer, message by message as its `encode_instruct` does, so that each
    token is known to belong to a message. tests prove the tokens equal `encode_chat_completion`."""

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
        # mistral-common 1.11.5 (axolotl 0.19's pin) asks encode_assistant_message for `continue_message`
        # as well; 1.12 and later do not have it.
        parameters = inspect.signature(self.instruct.encode_assistant_message).parameters
        self._continue = {"continue_message": False} if "continue_message" in parameters else {}

    @property
    def vocabulary_size(self) -> int:
        return int(self.text_tokenizer.n_words)

    def encode(self, example: dict[str, Any]) -> EncodedChat:
        """The tokens of a training conversation and their labels: each assistant message's tokens and
        its EOS are trained unless the message has `weight: 0`. Raises mistral-common's own errors when
        it cannot encode the conversation (for example tool calls with v1)."""
        request = self.validated_request(example)
        weights = iter(_assistant_weights(example["messages"]))
        tokens: list[int] = []
        labels: list[int] = []
        for message, encoded in self._encode_messages(request):
            tokens += encoded
            trained = isinstance(message, self._assistant) and next(weights, 1) != 0
            labels += encoded if trained else [IGNORED] * len(encoded)
        return EncodedChat(tokens, labels)

    def encode_prompt(self, messages: list[dict[str, Any]], tools: list[Any] | None = None) -> list[int]:
        """The tokens of a conversation to be answered (it ends with the user or a tool result), as
        mistral-common encodes a chat request for generation: what vLLM's `--tokenizer-mode mistral` sends."""
        request = self._request(
            messages=[self.message(message, finetuning=False) for message in messages],
            tools=[self._tool_definition.model_validate(tool) for tool in tools] if tools else None,
        )
        return list(load_tokenizer(self.version, finetuning=False).encode_chat_completion(request).tokens)

    def validated_request(self, example: dict[str, Any]) -> Any:
        """The example as mistral-common's normalised instruct request, checked by its validator."""
        messages = [self.message(message) for message in example["messages"]]
        request = self._request(messages=messages)
        validated = self.mistral._chat_completion_request_validator.validate_request(request)
        validated.tools = self._validated_tools(example.get("tools"))
        return self.mistral._instruct_request_normalizer.from_chat_completion_request(validated)

    def message(self, message: dict[str, Any], *, finetuning: bool = True) -> Any:
        """One message of La Plateforme's format as mistral-common's message object."""
        role = message["role"]
        if role == "assistant":
            assistant = self._finetuning_assistant if finetuning else self._assistant
            keys = ("content", "tool_calls", "weight") if finetuning else ("content", "tool_calls")
            return assistant.model_validate(_fields(message, keys))
        if role == "tool":
            return self._tool.model_validate(_fields(message, ("content", "tool_call_id", "name")))
        return (self._user if role == "user" else self._system).model_validate(
            {"content": message["content"]}
        )

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

    def _encode_messages(self, request: Any) -> list[tuple[Any, list[int]]]:
        """mistral-common's `encode_instruct`, message by message: (message, its tokens), BOS first as
        (None, [BOS])."""
        instruct = self.instruct
        validate_tool_results = getattr(instruct, "_validate_tool_results", None)
        if validate_tool_results is not None:
            validate_tool_results(request)
        instruct.validate_messages(request.messages)
        first_user, last_user = instruct.find_first_last_user(request)
        encoded: list[tuple[Any, list[int]]] = [(None, list(instruct.start()))]
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
                    message, is_before_last_user_message=index < last_user, **self._continue
                )
            else:
                tokens, _ = instruct.encode_system_message(message)
            encoded.append((message, list(tokens)))
        return encoded


def _assistant_weights(messages: list[dict[str, Any]]) -> list[Any]:
    """The weight of each assistant message mistral-common's normaliser leaves: it merges a run of
    consecutive messages with the same role and weight into one (weight missing = None)."""
    weights: list[Any] = []
    previous: tuple[Any, Any] | None = None
    for message in messages:
        current = (message["role"], message.get("weight"))
        if message["role"] == "assistant" and current != previous:
            weights.append(current[1])
        previous = current
    return weights


def _fields(message: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: message[key] for key in keys if message.get(key) is not None}


# --- the Jinja template ---------------------------------------------------------------------------------

# The parts that differ between versions: where the system prompt goes, how a user turn and an answer are
# written. Text that sentencepiece starts with its dummy-prefix space is written with a leading space.
_VERSIONS = {
    "v1": ("first_user", "' [INST] ' ~ content ~ ' [/INST]'", "' ' ~ message['content'] ~ eos_token"),
    "v3": (
        "last_user",
        "'[INST] ' ~ content ~ '[/INST]'",
        "' ' ~ message['content'].rstrip(' ') ~ eos_token",
    ),
}
_TEMPLATE = """\
{#- Mistral's chat format for the @VERSION@ tokenizer, as mistral-common encodes it (written by mft-recipes). -#}
{%- set ns = namespace(system='', turns=0, first_user=-1, last_user=-1) -%}
{%- for message in messages -%}
  {%- if message['role'] == 'system' -%}
    {%- if not loop.first -%}{{ raise_exception('Only the first message may be a system message.') }}{%- endif -%}
    {%- set ns.system = message['content'] -%}
  {%- else -%}
    {%- if message['role'] == 'user' -%}
      {%- if ns.first_user < 0 -%}{%- set ns.first_user = ns.turns -%}{%- endif -%}
      {%- set ns.last_user = ns.turns -%}
    {%- elif message['role'] != 'assistant' or message.get('tool_calls') -%}
      {{ raise_exception('Tool calls and tool results need mistral-common: serve with --tokenizer-mode mistral.') }}
    {%- endif -%}
    {%- set ns.turns = ns.turns + 1 -%}
  {%- endif -%}
{%- endfor -%}
{{- bos_token -}}
{%- for message in messages if message['role'] != 'system' -%}
  {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
    {{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}
  {%- endif -%}
  {%- if message['role'] == 'user' -%}
    {%- if ns.system and loop.index0 == ns.@SYSTEM_AT@ -%}
      {%- set content = ns.system ~ '\\n\\n' ~ message['content'] -%}
    {%- else -%}
      {%- set content = message['content'] -%}
    {%- endif -%}
    {{- @USER@ -}}
  {%- else -%}
    {{- @ASSISTANT@ -}}
  {%- endif -%}
{%- endfor -%}
"""


def chat_template(version: str) -> str:
    """Mistral's chat format for tokenizer `version` (v1 or v3) as a Jinja chat template: the text
    mistral-common's encoding decodes to. A prompt needs no generation suffix: it ends with [/INST]."""
    if version not in _VERSIONS:
        raise ValueError(
            f"no chat template for tokenizer {version!r}: expected one of {', '.join(_VERSIONS)}"
        )
    system_at, user, assistant = _VERSIONS[version]
    return (
        _TEMPLATE.replace("@VERSION@", version)
        .replace("@SYSTEM_AT@", system_at)
        .replace("@USER@", user)
        .replace("@ASSISTANT@", assistant)
    )


def mistral_version_of(template: str | None) -> str | None:
    """The tokenizer version whose Mistral format `template` is (as chat_template writes it), else None."""
    if template is None:
        return None
    return next(
        (version for version in _VERSIONS if template.strip() == chat_template(version).strip()), None
    )
