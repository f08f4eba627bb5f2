"""Generators for axolotl documents: config sections computed from the architecture, not typed by hand."""

from __future__ import annotations

from typing import Any

from mft_recipes import Architecture, Generator, RenderContext
from mft_recipes_axolotl.deepspeed import generate_zero_section

ATTENTION_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")
DENSE_MLP_MODULES = ("gate_proj", "up_proj", "down_proj")
# Mixtral's expert projections in the checkpoint's naming. On transformers 5.x the experts are fused
# 3-D parameters; peft converts w1/w2/w3 targets into target_parameters on gate_up_proj and down_proj.
EXPERT_MODULES = ("w1", "w2", "w3")


def lora_target_modules(architecture: Architecture, *, attention: bool = True, mlp: bool = True) -> list[str]:
    """The LoRA target module names that adapt attention and/or the MLP (the experts, on a MoE model)."""
    modules = list(ATTENTION_MODULES) if attention else []
    if mlp:
        modules += EXPERT_MODULES if architecture.is_moe else DENSE_MLP_MODULES
    return modules


def _lora_target_modules(arguments: dict[str, Any], context: RenderContext) -> list[str]:
    return lora_target_modules(
        context.architecture, attention=arguments.get("attention", True), mlp=arguments.get("mlp", True)
    )


GENERATORS = (
    Generator(
        "lora-target-modules",
        _lora_target_modules,
        "LoRA target modules for the recipe's architecture: attention q/k/v/o and the MLP "
        "(gate/up/down on Mistral, the experts w1/w2/w3 on Mixtral). Arguments: attention, mlp.",
    ),
    Generator(
        "deepspeed",
        generate_zero_section,
        "An inline DeepSpeed section for the recipe's GPUs: ZeRO stage, optional CPU offload, the "
        "batch and precision values left 'auto' for the Trainer. Arguments: stage, offload_optimizer, "
        "offload_param.",
    ),
)
