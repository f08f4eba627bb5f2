"""La Plateforme job payloads: the generators recipes call, the checks beyond the schema, and secrets.

A payload that is written to a file or printed never carries a key. The W&B key is put into the job
body only in memory, right before it is sent (`with_wandb_key`), and taken from WANDB_API_KEY.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator, Mapping
from typing import Any

from mft_recipes import Generator, KeyPath, Problem, RenderContext, ValidationContext, Validator

KIND = "la-plateforme-job"
WANDB_KEY_VARIABLE = "WANDB_API_KEY"

# Base models Mistral's fine-tuning documentation names: its release note of 2024-07-24 (docs.mistral.ai,
# "Fine-tuning support expanded to Codestral, Mistral NeMo, and Mistral Large 2") the first five, its
# Classifier Factory page (capabilities/finetuning/classifier_factory) the Ministral models. "ft:..."
# models are earlier results.
DOCUMENTED_MODELS = (
    "open-mistral-7b",
    "mistral-small-latest",
    "codestral-latest",
    "open-mistral-nemo",
    "mistral-large-latest",
    "ministral-8b-latest",
    "ministral-3b-latest",
)

# Key names that hold credentials: none of them belongs in a payload file.
SECRET_KEYS = frozenset({"api_key", "apikey", "token", "access_token", "secret", "password"})


def file_ids(arguments: dict[str, Any], context: RenderContext) -> list[str] | None:
    """`{$generate: platform-file-ids, ids: [...]}`: the ids that are set, or nothing at all.

    An optional file parameter left unset renders as null inside the list; the API wants the key
    absent rather than `[null]` or `[]`.
    """
    ids = [file_id for file_id in arguments.get("ids", []) if file_id]
    return ids or None


def wandb_integration(arguments: dict[str, Any], context: RenderContext) -> list[dict[str, Any]] | None:
    """`{$generate: platform-wandb, project: ..., name: ...}`: the W&B integration without its key,
    or nothing when no project is set."""
    project = arguments.get("project")
    if not project:
        return None
    integration = {"type": "wandb", "project": project}
    if arguments.get("name"):
        integration["name"] = arguments["name"]
    return [integration]


GENERATORS = (
    Generator("platform-file-ids", file_ids, "uploaded file ids, the unset ones left out"),
    Generator("platform-wandb", wandb_integration, "a W&B integration without its key (added at submit)"),
)


def with_wandb_key(payload: dict[str, Any], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A copy of the payload whose W&B integrations carry the key from WANDB_API_KEY, for sending only.

    Raises KeyError naming the variable when a W&B integration is asked for and the key is not set.
    """
    integrations = payload.get("integrations") or []
    if not any(integration.get("type") == "wandb" for integration in integrations):
        return payload
    environ = os.environ if environ is None else environ
    key = environ.get(WANDB_KEY_VARIABLE, "")
    if not key:
        raise KeyError(WANDB_KEY_VARIABLE)
    sent = copy.deepcopy(payload)
    for integration in sent["integrations"]:
        if integration.get("type") == "wandb":
            integration["api_key"] = key
    return sent


def _secret_paths(node: Any, path: KeyPath = ()) -> Iterator[KeyPath]:
    if isinstance(node, dict):
        for key, value in node.items():
            if str(key).lower() in SECRET_KEYS:
                yield (*path, key)
            else:
                yield from _secret_paths(value, (*path, key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _secret_paths(item, (*path, index))


def check_no_secrets(document: Any, context: ValidationContext) -> Iterator[Problem]:
    """A key written into a payload ends up in shells' history, CI logs and git: refuse it (without
    repeating its value)."""
    for path in _secret_paths(document):
        yield Problem(
            f"{path[-1]!r} holds a credential and must not be written into a job payload: remove it; "
            f"`mft-recipes platform submit` adds the W&B key from {WANDB_KEY_VARIABLE} when it sends the job",
            path,
            code="secret-in-payload",
        )


def check_files_distinct(document: Any, context: ValidationContext) -> Iterator[Problem]:
    """Mistral: "The same data should not be present in both train and validation files"."""
    training = {
        entry.get("file_id") for entry in document.get("training_files") or [] if isinstance(entry, dict)
    }
    for index, file_id in enumerate(document.get("validation_files") or []):
        if file_id in training:
            yield Problem(
                f"file {file_id!r} is both a training and a validation file: validation loss on training "
                "data says nothing; upload a held-out file",
                ("validation_files", index),
                code="validation-is-training",
            )


def check_hyperparameters(document: Any, context: ValidationContext) -> Iterator[Problem]:
    """training_steps and epochs both say how long to train; with both set it is unclear which wins."""
    hyperparameters = document.get("hyperparameters") or {}
    if hyperparameters.get("training_steps") is not None and hyperparameters.get("epochs") is not None:
        yield Problem(
            "both training_steps and epochs are set: give one (with the recipes: training_steps=null epochs=N)",
            ("hyperparameters",),
            code="steps-and-epochs",
            severity="warning",
        )


def check_classifier_targets(document: Any, context: ValidationContext) -> Iterator[Problem]:
    """Each target is a key in the samples' `labels`: two targets with one name cannot both be read."""
    seen: set[Any] = set()
    for index, target in enumerate(document.get("classifier_targets") or []):
        name = target.get("name") if isinstance(target, dict) else None
        if name in seen:
            yield Problem(
                f"classifier target {name!r} is declared twice; give each label level its own name",
                ("classifier_targets", index, "name"),
                code="duplicate-target",
            )
        seen.add(name)


def check_model(document: Any, context: ValidationContext) -> Iterator[Problem]:
    """A model Mistral does not document for fine-tuning is most likely a typo; the server decides."""
    model = document.get("model")
    if isinstance(model, str) and model not in DOCUMENTED_MODELS and not model.startswith("ft:"):
        yield Problem(
            f"model {model!r} is not one Mistral documents for fine-tuning ({', '.join(DOCUMENTED_MODELS)})",
            ("model",),
            code="undocumented-model",
            severity="warning",
        )


VALIDATORS = (
    Validator("platform-no-secrets", (KIND,), check_no_secrets, "no credential in a job payload"),
    Validator(
        "platform-files-distinct", (KIND,), check_files_distinct, "validation files are not training files"
    ),
    Validator(
        "platform-hyperparameters", (KIND,), check_hyperparameters, "training_steps or epochs, not both"
    ),
    Validator(
        "platform-classifier-targets", (KIND,), check_classifier_targets, "classifier target names unique"
    ),
    Validator("platform-model", (KIND,), check_model, "a model Mistral documents for fine-tuning"),
)
