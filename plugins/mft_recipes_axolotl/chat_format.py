"""The chat format of an axolotl config: the generators that write it into a recipe, and the checks that
catch a config whose chat format cannot work.

A recipe's `chat_template` parameter chooses between two formats:

- `mistral` (the default): Mistral's exact format for the model's tokenizer version, for base and
  Instruct models alike. The dataset type `mft_recipes_axolotl.mistral_chat.<version>` writes the tokens
  mistral-common writes, and `chat_template: jinja` with the same format as a Jinja template makes axolotl
  save that template with the trained model, so `export` and vLLM format prompts as training did.
- `tokenizer_default`: axolotl's own `type: chat_template` with the template the base model's tokenizer
  ships. Published base models ship none (only the Instruct repositories do), and axolotl then stops at
  data loading; `validate` says so before any download.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mft_recipes_catalogue.chat_format import chat_template, mistral_version_of

from mft_recipes import Generator, Problem, RenderContext, ValidationContext, Validator
from mft_recipes_axolotl.mistral_chat import dataset_type

MISTRAL, TOKENIZER_DEFAULT = "mistral", "tokenizer_default"
CHOICES = (MISTRAL, TOKENIZER_DEFAULT)
MISTRAL_TYPE_PREFIX = dataset_type("")
MISTRAL_VERSIONS = ("v1", "v3")

# Whether each published repository's tokenizer_config.json carries a chat_template. The base models'
# carry none (mistralai/Mistral-7B-v0.1's tokenizer_config.json, cited in vllm-project/vllm#1425); the
# Instruct ones do (Hugging Face's maintainers in vllm-project/vllm#7739: "All of the Mistral Instruct
# models in mistralai/ should have chat templates"). Only a repository known to have none is refused.
SHIPS_CHAT_TEMPLATE = {
    "mistralai/Mistral-7B-v0.1": False,
    "mistralai/Mistral-7B-v0.3": False,
    "mistralai/Mixtral-8x7B-v0.1": False,
    "mistralai/Mixtral-8x22B-v0.1": False,
    "mistral-community/Mistral-7B-v0.2": False,
    "mistral-community/Mixtral-8x22B-v0.1": False,
    "mistralai/Mistral-7B-Instruct-v0.1": True,
    "mistralai/Mistral-7B-Instruct-v0.2": True,
    "mistralai/Mistral-7B-Instruct-v0.3": True,
    "mistralai/Mixtral-8x7B-Instruct-v0.1": True,
    "mistralai/Mixtral-8x22B-Instruct-v0.1": True,
}
TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json")
TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json", "tokenizer.model")


# --- generators ------------------------------------------------------------------------------------------


def _choice(arguments: dict[str, Any]) -> str:
    choice = arguments.get("choice", MISTRAL)
    if choice not in CHOICES:
        raise ValueError(f"chat_template {choice!r}: expected one of {', '.join(CHOICES)}")
    return str(choice)


def tokenizer_version(context: RenderContext) -> str:
    """The tokenizer version of the model the document trains: its base_model's when the catalogue or a
    local folder's config.json tells it (a recipe rendered on another base model), else the recipe's."""
    base_model = context.parameters.get("base_model")
    found = context.architectures.find(base_model) if isinstance(base_model, str) else None
    return (found or context.architecture).tokenizer


def _template_choice(arguments: dict[str, Any], context: RenderContext) -> str:
    return "jinja" if _choice(arguments) == MISTRAL else TOKENIZER_DEFAULT


def _template_jinja(arguments: dict[str, Any], context: RenderContext) -> str | None:
    return chat_template(tokenizer_version(context)) if _choice(arguments) == MISTRAL else None


def _dataset_type(arguments: dict[str, Any], context: RenderContext) -> str:
    return dataset_type(tokenizer_version(context)) if _choice(arguments) == MISTRAL else "chat_template"


GENERATORS = (
    Generator(
        "chat-template",
        _template_choice,
        "axolotl's chat_template: `jinja` for Mistral's format (choice: mistral), else tokenizer_default.",
    ),
    Generator(
        "chat-template-jinja",
        _template_jinja,
        "Mistral's chat format for the base model's tokenizer version as a Jinja template (choice: mistral), "
        "saved with the trained model; nothing for choice: tokenizer_default.",
    ),
    Generator(
        "chat-dataset-type",
        _dataset_type,
        "The dataset type: mft_recipes_axolotl.mistral_chat.<version>, Mistral's exact tokens and labels "
        "for the base model's tokenizer version (choice: mistral), or axolotl's chat_template.",
    ),
)


# --- validators ------------------------------------------------------------------------------------------


def _datasets(document: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    datasets = document.get("datasets")
    if not isinstance(datasets, list):
        return []
    return [(index, entry) for index, entry in enumerate(datasets) if isinstance(entry, dict)]


def _template_source(document: dict[str, Any]) -> str | None:
    """Where axolotl loads the tokenizer from: tokenizer_config, else base_model."""
    value = document.get("tokenizer_config") or document.get("base_model")
    return value if isinstance(value, str) else None


def ships_chat_template(source: str) -> bool | None:
    """Whether the tokenizer at `source` (a hub id or a local folder) carries a chat template; None when
    that is not known here."""
    if source in SHIPS_CHAT_TEMPLATE:
        return SHIPS_CHAT_TEMPLATE[source]
    folder = Path(source)
    if not folder.is_dir() or not any((folder / name).is_file() for name in TOKENIZER_FILES):
        return None
    if any((folder / name).is_file() for name in TEMPLATE_FILES):
        return True
    config = folder / "tokenizer_config.json"
    try:
        settings = json.loads(config.read_text(encoding="utf-8")) if config.is_file() else {}
    except (OSError, ValueError):
        return None
    return bool(isinstance(settings, dict) and settings.get("chat_template"))


def _effective_choice(document: dict[str, Any], entry: dict[str, Any]) -> str:
    """The template axolotl picks for a dataset (axolotl/utils/chat_templates/base.py,
    extract_chat_template_args): the dataset's chat_template, else the config's, else tokenizer_default."""
    if entry.get("chat_template"):
        return str(entry["chat_template"])
    if document.get("chat_template"):
        return str(document["chat_template"])
    return "jinja" if document.get("chat_template_jinja") else TOKENIZER_DEFAULT


def check_chat_template_exists(document: dict[str, Any], context: ValidationContext) -> Iterator[Problem]:
    """`type: chat_template` that falls back to the tokenizer's own template, on a tokenizer without one:
    axolotl stops at data loading ("chat_template choice is tokenizer_default but tokenizer's
    chat_template is null"), after the download."""
    source = _template_source(document)
    if source is None:
        return
    for index, entry in _datasets(document):
        if entry.get("type") != "chat_template" or _effective_choice(document, entry) != TOKENIZER_DEFAULT:
            continue
        if ships_chat_template(source) is not False:
            continue
        architecture = context.architectures.find(source)
        version = architecture.tokenizer if architecture is not None else "v3"
        yield Problem(
            "the tokenizer's own chat template (chat_template: tokenizer_default) formats these "
            f"conversations, but {source} has none: published base models ship none, only the Instruct "
            f"repositories do, and axolotl stops at data loading. Write `type: {dataset_type(version)}` with "
            f"`chat_template: jinja` and Mistral's {version} template as chat_template_jinja (`mft-recipes "
            "render` writes all three: chat_template=mistral is its default), or a chat_template of your own",
            ("datasets", index, "type"),
            code="chat-template-missing",
        )


def check_mistral_chat_version(document: dict[str, Any], context: ValidationContext) -> Iterator[Problem]:
    """A Mistral chat dataset type must be the base model's tokenizer version (v1 and v3 number their
    pieces apart), and the template saved with the model should be the one it trains on."""
    source = document.get("base_model_config") or document.get("base_model")
    architecture = context.architectures.find(source) if isinstance(source, str) else None
    for index, entry in _datasets(document):
        kind = entry.get("type")
        if not isinstance(kind, str) or not kind.startswith(MISTRAL_TYPE_PREFIX):
            continue
        version = kind[len(MISTRAL_TYPE_PREFIX) :]
        path = ("datasets", index, "type")
        known = ", ".join(dataset_type(name) for name in MISTRAL_VERSIONS)
        if version not in MISTRAL_VERSIONS:
            yield Problem(
                f"no dataset type {kind}; the Mistral chat types are {known}", path, code="mistral-chat-type"
            )
            continue
        if architecture is not None and architecture.tokenizer != version:
            yield Problem(
                f"{kind} writes the tokens of Mistral's {version} tokenizer, but {source} uses the "
                f"{architecture.tokenizer} tokenizer: write type: {dataset_type(architecture.tokenizer)}",
                path,
                code="mistral-chat-type",
            )
        saved = (
            document.get("chat_template_jinja") if document.get("chat_template") in ("jinja", None) else None
        )
        if mistral_version_of(saved) != version:
            yield Problem(
                f"{kind} trains on Mistral's {version} format, but the chat template axolotl saves with the "
                "model is another one, so a server using it would format prompts differently: set "
                f"chat_template: jinja and chat_template_jinja to Mistral's {version} template (`mft-recipes "
                "render` writes both)",
                ("chat_template_jinja",) if saved else ("chat_template",),
                code="chat-template-not-trained",
                severity="warning",
            )


VALIDATORS = (
    Validator(
        name="chat-template-missing",
        kinds=("axolotl",),
        check=check_chat_template_exists,
        description="type: chat_template on a tokenizer without a chat template (published base models).",
    ),
    Validator(
        name="mistral-chat-type",
        kinds=("axolotl",),
        check=check_mistral_chat_version,
        description="A Mistral chat dataset type that is not the model's tokenizer version, or a saved "
        "template that is not the trained format.",
    ),
)
