"""A TRL config (`render --target trl`) read as the plan reads an axolotl config.

The plan's counts and memory model read axolotl's keys (counts.py, memory.py). A TRL config says the same
things under TRL's names (the fields of trl sft's ScriptArguments, SFTConfig and ModelConfig), and its
ZeRO stage in the accelerate config written beside it; this module renames them, with TRL's defaults
where a key is left out (trl/trainer/model_config.py, sft_config.py), so both are planned by one model.
"""

from __future__ import annotations

from typing import Any

# TRL's name → axolotl's, for the keys the plan reads that mean the same in both.
RENAMED = {
    "model_name_or_path": "base_model",
    "lora_r": "lora_r",
    "lora_alpha": "lora_alpha",
    "lora_dropout": "lora_dropout",
    "lora_target_parameters": "lora_target_parameters",
    "lora_modules_to_save": "lora_modules_to_save",
    "load_in_4bit": "load_in_4bit",
    "load_in_8bit": "load_in_8bit",
    "bf16": "bf16",
    "fp16": "fp16",
    "attn_implementation": "attn_implementation",
    "max_length": "sequence_len",
    "per_device_train_batch_size": "micro_batch_size",
    "gradient_accumulation_steps": "gradient_accumulation_steps",
    "packing": "sample_packing",
    "gradient_checkpointing": "gradient_checkpointing",
    "optim": "optimizer",
    "num_train_epochs": "num_epochs",
    "test_split_size": "val_set_size",
}
# What TRL uses when a key is left out: SFTConfig's max_length, per-device batch and checkpointing, and
# ModelConfig's LoRA rank, alpha and dropout.
TRL_DEFAULTS = {
    "max_length": 1024,
    "per_device_train_batch_size": 8,
    "gradient_checkpointing": True,
    "lora_r": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.05,
    "num_train_epochs": 3,
}


def as_axolotl(document: dict[str, Any], accelerate: dict[str, Any] | None) -> dict[str, Any]:
    """The TRL config in the axolotl keys the plan reads; `accelerate` is its accelerate config, if any."""
    given = {**TRL_DEFAULTS, **document}
    planned = {RENAMED[key]: value for key, value in given.items() if key in RENAMED}
    if document.get("use_peft"):
        planned["adapter"] = "qlora" if document.get("load_in_4bit") else "lora"
        modules = document.get("lora_target_modules")
        # ModelConfig reads a one-item list as that name (peft's "all-linear", a regex).
        planned["lora_target_modules"] = (
            modules[0] if isinstance(modules, list) and len(modules) == 1 else modules
        )
    else:
        for key in ("lora_r", "lora_alpha", "lora_dropout"):
            planned.pop(key, None)
    plugin = (accelerate or {}).get("deepspeed_config")
    if isinstance(plugin, dict):
        planned["deepspeed"] = {
            "zero_optimization": {
                "stage": plugin.get("zero_stage", 0),
                "offload_optimizer": {"device": plugin.get("offload_optimizer_device", "none")},
                "offload_param": {"device": plugin.get("offload_param_device", "none")},
            }
        }
    return planned
