"""An axolotl recipe's document as a TRL config: what `trl sft --config FILE` runs.

The recipe is written once, for axolotl (its `target`); a recipe that lists `trl` in its `targets` is
rendered for axolotl first (parameters, generators, the CPU profile), then translated key by key by the
table below into TRL's own keys: the script arguments (`ScriptArguments`, `DatasetMixtureConfig`),
`SFTConfig` (transformers' TrainingArguments and TRL's SFT keys) and `ModelConfig` (the model, LoRA and
4-bit loading), the four dataclasses `trl sft` parses (trl/scripts/sft.py, `make_parser`). Every axolotl
key has a row: one TRL cannot express is refused (RenderError) with the reason, never dropped in
silence; the few left out on purpose say why.

The DeepSpeed section becomes the accelerate config written beside the TRL config (accelerate.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mft_recipes import RenderContext, RenderError

DTYPES = {True: "bfloat16", "auto": "bfloat16", False: "float32"}
# The dataset types that train Mistral's exact format (the axolotl plugin's mistral_chat), by prefix.
MISTRAL_CHAT_TYPE = "mft_recipes_axolotl.mistral_chat."


@dataclass(frozen=True)
class Rule:
    """What becomes of one axolotl key: `convert(value, document)` gives TRL keys and values (empty: the
    key is left out on purpose, `why` says so); `refuse(value, document)` gives the reason TRL cannot
    express the value, or ""."""

    convert: Callable[[Any, dict[str, Any]], dict[str, Any]]
    why: str = ""
    refuse: Callable[[Any, dict[str, Any]], str] | None = None


def same(name: str) -> Callable[[Any, dict[str, Any]], dict[str, Any]]:
    return lambda value, _document: {name: value}


def nothing(_value: Any, _document: dict[str, Any]) -> dict[str, Any]:
    return {}


def _dtype(value: Any, document: dict[str, Any]) -> dict[str, Any]:
    # TRL's ModelConfig loads in float32 unless told (`dtype` defaults to float32): bf16 training loads
    # the base in bfloat16, as axolotl does, and QLoRA computes in it (get_quantization_config).
    return {"bf16": value is not False, "dtype": DTYPES.get(value, "float32")}


def _adapter(value: Any, document: dict[str, Any]) -> dict[str, Any]:
    return {"use_peft": True} if value in ("lora", "qlora") else {}


def _load_in_4bit(value: Any, document: dict[str, Any]) -> dict[str, Any]:
    # axolotl loads 4-bit as NF4 with double quantization (axolotl/loaders/model.py, set_quantization_config).
    return {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "use_bnb_nested_quant": True} if value else {}


def _quantize_experts(value: Any, document: dict[str, Any]) -> str:
    if not value:
        return ""
    return (
        "TRL cannot express it: TRL loads 4-bit through transformers' bitsandbytes "
        "integration, which quantizes nn.Linear layers only, and Mixtral's experts are fused 3-D parameters "
        "(45.1 B of Mixtral 8x7B's 46.7 B parameters), so they would stay 16-bit and the base alone would "
        "need about 86 GiB. Train this recipe with axolotl (its own target), or render device=cpu for the "
        "TRL smoke test on a tiny model"
    )


def _model_config(value: Any, document: dict[str, Any]) -> dict[str, Any]:
    # trl sft merges model_init_kwargs into from_pretrained's arguments (trl/scripts/sft.py, main), which
    # override the model's config: output_router_logits turns Mixtral's load-balancing loss on.
    return {"model_init_kwargs": dict(value)}


def _target_linear(value: Any, document: dict[str, Any]) -> dict[str, Any]:
    return {"lora_target_modules": ["all-linear"]} if value else {}


def _datasets(value: Any, document: dict[str, Any]) -> dict[str, Any]:
    return {"datasets": [{"path": "json", "data_files": entry["path"]} for entry in value]}


def _dataset_refusal(value: Any, document: dict[str, Any]) -> str:
    for entry in value:
        kind = entry.get("type")
        if not (isinstance(kind, str) and kind.startswith(MISTRAL_CHAT_TYPE)):
            return (
                f"datasets type {kind!r}: the trl target trains Mistral's exact chat format only "
                "(chat_template=mistral), from data `mft-recipes trl tokenize` writes with mistral-common: TRL "
                "formats chats through the tokenizer's template, and assistant_only_loss needs {% generation %} "
                "markers that Mistral's templates lack (docs/trl.md)"
            )
    return ""


def _val_set_size(value: Any, document: dict[str, Any]) -> dict[str, Any]:
    # trl sft holds out `test_split_size` of the data as its "test" split (trl/scripts/utils.py, get_dataset).
    return {"test_split_size": value} if value else {"eval_strategy": "no"}


def _per_epoch(count_key: str, strategy_key: str, steps_key: str) -> Callable[[Any, dict[str, Any]], dict]:
    """axolotl's `evals_per_epoch`/`saves_per_epoch` as TRL's steps: a fraction of all training steps
    (TrainingArguments reads a float below 1 as one), or once an epoch."""

    def convert(value: Any, document: dict[str, Any]) -> dict[str, Any]:
        if count_key == "evals_per_epoch" and not document.get("val_set_size"):
            return {}
        epochs = float(document.get("num_epochs") or 1)
        if value == 1:
            return {strategy_key: "epoch"}
        return {strategy_key: "steps", steps_key: round(1 / (value * epochs), 6)}

    return convert


def _micro_batch(value: Any, document: dict[str, Any]) -> dict[str, Any]:
    return {"per_device_train_batch_size": value, "per_device_eval_batch_size": value}


def _wandb(value: Any, document: dict[str, Any]) -> dict[str, Any]:
    # TrlParser sets a config's `env` mapping in the environment before training; W&B reads its project there.
    return {"report_to": ["wandb"], "env": {"WANDB_PROJECT": value}} if value else {"report_to": "none"}


# Every axolotl key a recipe's document may hold, in the order the TRL config is written.
RULES: dict[str, Rule] = {
    "base_model": Rule(same("model_name_or_path")),
    "bf16": Rule(_dtype),
    "fp16": Rule(
        nothing,
        refuse=lambda value, _d: (
            "TRL renders bf16 or float32; fp16 training is not a recipe's" if value else ""
        ),
    ),
    "tf32": Rule(same("tf32")),
    "attn_implementation": Rule(same("attn_implementation")),
    "load_in_4bit": Rule(_load_in_4bit),
    "quantize_moe_experts": Rule(nothing, refuse=_quantize_experts),
    "model_config": Rule(_model_config),
    "adapter": Rule(_adapter),
    "lora_r": Rule(same("lora_r")),
    "lora_alpha": Rule(same("lora_alpha")),
    "lora_dropout": Rule(same("lora_dropout")),
    "lora_target_modules": Rule(same("lora_target_modules")),
    "lora_target_parameters": Rule(same("lora_target_parameters")),
    "lora_target_linear": Rule(_target_linear),
    "lora_modules_to_save": Rule(same("lora_modules_to_save")),
    "datasets": Rule(_datasets, refuse=_dataset_refusal),
    "chat_template": Rule(
        nothing, "the tokenized data carries the format; TRL formats nothing through a template"
    ),
    "chat_template_jinja": Rule(nothing, "the same"),
    "val_set_size": Rule(_val_set_size),
    "output_dir": Rule(same("output_dir")),
    "sequence_len": Rule(same("max_length")),
    "sample_packing": Rule(lambda value, _d: {"packing": bool(value)}),
    "pad_to_sequence_len": Rule(
        nothing, "TRL packs best-fit into max_length, padding-free (packing_strategy bfd, its default)"
    ),
    "micro_batch_size": Rule(_micro_batch),
    "gradient_accumulation_steps": Rule(same("gradient_accumulation_steps")),
    "num_epochs": Rule(same("num_train_epochs")),
    "optimizer": Rule(same("optim")),
    "lr_scheduler": Rule(same("lr_scheduler_type")),
    "learning_rate": Rule(same("learning_rate")),
    "warmup_ratio": Rule(same("warmup_steps")),  # a float below 1 is a ratio of all steps (transformers 5)
    "weight_decay": Rule(same("weight_decay")),
    "max_grad_norm": Rule(same("max_grad_norm")),
    "gradient_checkpointing": Rule(same("gradient_checkpointing")),
    "logging_steps": Rule(same("logging_steps")),
    "evals_per_epoch": Rule(_per_epoch("evals_per_epoch", "eval_strategy", "eval_steps")),
    "saves_per_epoch": Rule(_per_epoch("saves_per_epoch", "save_strategy", "save_steps")),
    "deepspeed": Rule(nothing, "the accelerate config written beside the TRL config carries it"),
    "wandb_project": Rule(_wandb),
    # axolotl's Triton LoRA kernels, which its CPU profile turns off: TRL has none to turn off.
    **{
        f"lora_{name}_kernel": Rule(nothing, "an axolotl kernel; TRL has none")
        for name in ("mlp", "qkv", "o", "embedding")
    },
}


def translate(document: dict[str, Any], context: RenderContext) -> dict[str, Any]:
    """The TRL config of an axolotl document, or RenderError naming the first key TRL cannot express."""
    recipe = context.recipe.name
    unknown = [key for key in document if key not in RULES]
    if unknown:
        raise RenderError(
            f"recipe {recipe!r} for target trl: no TRL key for the axolotl key(s) {', '.join(unknown)} "
            "(mft_recipes_trl/translate.py translates each key it knows; nothing is dropped unread)"
        )
    config: dict[str, Any] = {}
    for key, value in document.items():
        rule = RULES[key]
        reason = rule.refuse(value, document) if rule.refuse else ""
        if reason:
            raise RenderError(f"recipe {recipe!r} for target trl: {key}: {reason}")
        config.update(rule.convert(value, document))
    if context.parameters.get("device") == "cpu" and "deepspeed" in document:
        # The CPU profile's one TRL key, for the runs accelerate launches on several ranks: they talk over
        # gloo, torch's CPU backend (the Trainer's default is nccl, which needs GPUs).
        config["ddp_backend"] = "gloo"
    return config
