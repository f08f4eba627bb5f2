"""A hand-written axolotl config of the kind users start from (a dense Mistral LoRA, close to axolotl's
own examples), shared by the fast tier and the truth tier, which vary it one key at a time."""

from __future__ import annotations

import copy
from typing import Any

MISTRAL_LORA: dict[str, Any] = {
    "base_model": "mistralai/Mistral-7B-v0.3",
    "adapter": "lora",
    "lora_r": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.0,
    "lora_target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "datasets": [{"path": "train.jsonl", "type": "alpaca"}],  # as axolotl's examples/mistral/lora.yml
    "output_dir": "./out",
    "sequence_len": 2048,
    "micro_batch_size": 1,
    "gradient_accumulation_steps": 4,
    "num_epochs": 1,
    "learning_rate": 0.0002,
}


def mistral_lora(**changes: Any) -> dict[str, Any]:
    """MISTRAL_LORA with `changes` (a copy: tests may edit it)."""
    return {**copy.deepcopy(MISTRAL_LORA), **changes}
