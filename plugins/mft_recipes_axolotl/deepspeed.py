"""DeepSpeed sections for axolotl configs: written inline, so one YAML document carries everything.

The values marked "auto" are filled by the Hugging Face Trainer from the axolotl config at launch
(micro batch, accumulation, clipping, precision), so the section cannot disagree with the document it
sits in. Only what the Trainer cannot know (the ZeRO stage, offloading) is decided here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mft_recipes import RenderContext

SCHEMA = "deepspeed"


def zero_section(
    stage: int, *, offload_optimizer: bool = False, offload_param: bool = False
) -> dict[str, Any]:
    """A DeepSpeed config for ZeRO `stage` with bf16, the shape axolotl's own deepspeed_configs use."""
    if stage not in (1, 2, 3):
        raise ValueError(f"ZeRO stage must be 1, 2 or 3, not {stage!r}")
    zero: dict[str, Any] = {"stage": stage, "overlap_comm": True, "contiguous_gradients": True}
    if stage == 3:
        zero.update(
            {
                "sub_group_size": 0,
                "reduce_bucket_size": "auto",
                "stage3_prefetch_bucket_size": "auto",
                "stage3_param_persistence_threshold": "auto",
                "stage3_max_live_parameters": 0,
                "stage3_max_reuse_distance": 0,
                # Without this a ZeRO-3 save writes shards, not a model (or adapter) that loads elsewhere.
                "stage3_gather_16bit_weights_on_model_save": True,
            }
        )
    else:
        zero.update({"reduce_bucket_size": "auto", "allgather_bucket_size": "auto"})
    if offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    if offload_param:
        if stage != 3:
            raise ValueError("offload_param needs ZeRO stage 3")
        zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    return {
        "zero_optimization": zero,
        "bf16": {"enabled": "auto"},
        "fp16": {"enabled": "auto"},
        "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto",
        "train_batch_size": "auto",
        "train_micro_batch_size_per_gpu": "auto",
        "wall_clock_breakdown": False,
    }


def generate_zero_section(arguments: dict[str, Any], context: RenderContext) -> dict[str, Any]:
    """Generator `deepspeed`: arguments stage, offload_optimizer, offload_param."""
    if context.recipe.hardware.gpus < 2:
        raise ValueError(f"recipe {context.recipe.name!r} asks for DeepSpeed but names one GPU")
    return zero_section(
        int(arguments.get("stage", 3)),
        offload_optimizer=bool(arguments.get("offload_optimizer", False)),
        offload_param=bool(arguments.get("offload_param", False)),
    )


def is_deepspeed_config(document: Any) -> bool:
    return isinstance(document, dict) and "zero_optimization" in document and "base_model" not in document


def deepspeed_of(document: dict[str, Any], launch_dir: str | Path | None = None) -> dict[str, Any] | None:
    """The DeepSpeed config an axolotl document uses: inline, or read from the JSON file it names, which
    axolotl resolves against the directory it is launched from (`launch_dir`; None: this process's)."""
    value = document.get("deepspeed")
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        path = Path(value)
        if not path.is_absolute() and launch_dir is not None:
            path = Path(launch_dir) / path
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return loaded if isinstance(loaded, dict) else None
    return None


def zero_stage(document: dict[str, Any], launch_dir: str | Path | None = None) -> int:
    """The ZeRO stage of an axolotl document (0 when it uses no DeepSpeed)."""
    config = deepspeed_of(document, launch_dir)
    zero = (config or {}).get("zero_optimization") or {}
    stage = zero.get("stage", 0) if isinstance(zero, dict) else 0
    return stage if isinstance(stage, int) else 0
