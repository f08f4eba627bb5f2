"""Checks of TRL configs that TRL does not make, or makes only once the model is loaded and training.

The schema (schemas/trl.schema.json) already refuses unknown keys and wrong types. These catch a config
that starts and then trains less than it claims: LoRA that misses Mixtral's experts, expert LoRA with
dropout (peft stops at the first step), and data that TRL would format through the tokenizer's template
instead of Mistral's exact tokens, or train on every token.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mft_recipes import Architecture, Problem, ValidationContext, Validator

# Mixtral's expert projections in the checkpoint's naming, which peft converts to the fused parameters
# (peft/utils/transformers_weight_conversion.py), and the fused parameters' own names.
EXPERT_MODULES = ("w1", "w2", "w3")
EXPERT_PARAMETERS = ("gate_up_proj", "down_proj")
# ModelConfig's default lora_dropout (trl/trainer/model_config.py): a config that leaves it out has it.
TRL_DEFAULT_DROPOUT = 0.05
TOKENIZE = "mft-recipes trl tokenize CHAT.jsonl --recipe RECIPE -o"


def architecture_of(document: dict[str, Any], context: ValidationContext) -> Architecture | None:
    """The architecture a TRL config trains: its model_name_or_path, from the catalogue or the config.json
    of a local model folder (relative to the launch directory, `--cwd`)."""
    value = document.get("model_name_or_path")
    if not isinstance(value, str) or not value:
        return None
    local = Path(context.cwd or ".") / value
    return context.architectures.find(str(local) if (local / "config.json").is_file() else value)


def _listed(document: dict[str, Any], key: str) -> list[str]:
    names = document.get(key) or []
    return [names] if isinstance(names, str) else [str(name) for name in names]


def expert_targets(document: dict[str, Any]) -> list[str]:
    found = [name for name in _listed(document, "lora_target_modules") if name in EXPERT_MODULES]
    return found + [
        name
        for name in _listed(document, "lora_target_parameters")
        if name.rsplit(".", 1)[-1] in EXPERT_PARAMETERS
    ]


def _on_mixtral_lora(document: dict[str, Any], context: ValidationContext) -> bool:
    architecture = architecture_of(document, context)
    return bool(document.get("use_peft")) and architecture is not None and architecture.is_moe


def check_experts_trained(document: dict[str, Any], context: ValidationContext) -> Iterator[Problem]:
    if not _on_mixtral_lora(document, context) or expert_targets(document):
        return
    all_linear = "all-linear" in _listed(document, "lora_target_modules")
    yield Problem(
        "this Mixtral config trains no expert weights"
        + (" (all-linear finds the attention projections only)" if all_linear else "")
        + ": on transformers 5.x the experts are fused 3-D parameters, not Linear layers. Add w1, w2, w3 to "
        "lora_target_modules (peft converts them to mlp.experts.gate_up_proj and down_proj), with "
        "lora_dropout: 0",
        ("lora_target_modules",),
        code="moe-experts-not-trained",
    )


def check_expert_dropout(document: dict[str, Any], context: ValidationContext) -> Iterator[Problem]:
    dropout = document.get("lora_dropout", TRL_DEFAULT_DROPOUT)
    if not document.get("use_peft") or not expert_targets(document) or dropout == 0:
        return
    given = "is" if "lora_dropout" in document else f"defaults to {TRL_DEFAULT_DROPOUT} in TRL, so it is"
    yield Problem(
        f"lora_dropout {given} {dropout}, but LoRA on Mixtral's experts runs through peft's ParamWrapper, "
        "which refuses dropout (training stops at the first step); set lora_dropout: 0",
        ("lora_dropout",) if "lora_dropout" in document else (),
        code="expert-lora-dropout",
    )


def check_w1_with_w3(document: dict[str, Any], context: ValidationContext) -> Iterator[Problem]:
    targets = set(_listed(document, "lora_target_modules"))
    if ("w1" in targets) != ("w3" in targets) and _on_mixtral_lora(document, context):
        given, missing = ("w1", "w3") if "w1" in targets else ("w3", "w1")
        yield Problem(
            f"lora_target_modules has {given} without {missing}: Mixtral fuses w1 and w3 into one "
            f"gate_up_proj parameter and peft refuses one without the other; add {missing}",
            ("lora_target_modules",),
            code="w1-without-w3",
        )


def _data_files(document: dict[str, Any]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """(key path, file) of every local data file a TRL config loads."""
    name = document.get("dataset_name")
    if isinstance(name, str) and not document.get("datasets"):
        yield ("dataset_name",), name
    for index, entry in enumerate(document.get("datasets") or []):
        if not isinstance(entry, dict):
            continue
        files = entry.get("data_files")
        listed = [files] if isinstance(files, str) else files if isinstance(files, list) else []
        for position, file in enumerate(listed):
            path: tuple[str | int, ...] = ("datasets", index, "data_files")
            yield (path if isinstance(files, str) else (*path, position)), str(file)


def _first_record(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as lines:
            return json.loads(next((line for line in lines if line.strip()), "null"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def check_tokenized_data(document: dict[str, Any], context: ValidationContext) -> Iterator[Problem]:
    """Local data must be Mistral's exact tokens with the assistant mask (`mft-recipes trl tokenize`):
    chat messages would be formatted by the tokenizer's template, and tokens without a mask train on
    every token (TRL builds labels from the `assistant_masks` column, trl/trainer/sft_trainer.py)."""
    architecture = architecture_of(document, context)
    for path, file in _data_files(document):
        local = Path(context.cwd or ".") / file
        if not local.is_file():
            continue
        record = _first_record(local)
        if not isinstance(record, dict):
            continue
        if "input_ids" not in record:
            yield Problem(
                f"{file} holds {'chat messages' if 'messages' in record else 'records'}, not tokens: TRL would "
                "format them through the tokenizer's chat template, which is not Mistral's exact format (and "
                f"base models ship none). Tokenize them first: `{TOKENIZE} {Path(file).stem}.tokens.jsonl` "
                "(docs/trl.md)",
                path,
                code="trl-data-not-tokenized",
            )
        elif "assistant_masks" not in record and "labels" not in record:
            yield Problem(
                f"{file} has input_ids but no assistant_masks or labels: TRL would train on every token, "
                f"prompts included; write it with `{TOKENIZE} ...`",
                path,
                code="trl-data-not-tokenized",
            )
        elif architecture is not None and record.get("tokenizer") not in (None, architecture.tokenizer):
            yield Problem(
                f"{file} was tokenized with Mistral's {record['tokenizer']} tokenizer, but "
                f"{document.get('model_name_or_path')} uses {architecture.tokenizer} (they number their pieces "
                f"apart): tokenize it again with the recipe of this model",
                path,
                code="trl-data-tokenizer",
            )


VALIDATORS = tuple(
    Validator(name=name, kinds=("trl",), check=check, description=description)
    for name, check, description in (
        ("trl-moe-experts", check_experts_trained, "Mixtral LoRA that trains no expert weights."),
        ("trl-expert-dropout", check_expert_dropout, "Expert LoRA with dropout, which peft refuses."),
        ("trl-w1-w3", check_w1_with_w3, "w1 without w3 (or w3 without w1) on Mixtral."),
        ("trl-tokenized-data", check_tokenized_data, "Local data that is not Mistral's exact tokens."),
    )
)
