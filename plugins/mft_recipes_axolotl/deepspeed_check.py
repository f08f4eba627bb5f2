"""A DeepSpeed section as it is at launch, and DeepSpeed's own verdict on it.

`resolved_deepspeed` fills every "auto" the way the HF Trainer fills it for the recipe's GPU count;
`deepspeed_problems` hands the result to DeepSpeed's own config classes (the strict ZeRO model, the
batch arithmetic) on that many data-parallel ranks. Part of `validate --deep` (deep.py) and of the truth
tier. transformers and deepspeed are imported inside the functions: deepspeed.py, which `render` uses,
imports neither and neither does this module.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

from mft_recipes import Problem


def resolved_deepspeed(
    config: Any, gpus: int, model_config: Any, num_training_steps: int = 1000
) -> dict[str, Any]:
    """The axolotl config's DeepSpeed section with every "auto" filled the way the HF Trainer fills it on
    `gpus` ranks (`HfTrainerDeepSpeedConfig.trainer_config_process` / `_finalize`, from the
    TrainingArguments the axolotl config gives and the hidden size in `model_config`, the model's config
    as axolotl loads it). Raises ValueError, the Trainer's, on a value that contradicts the config."""
    from transformers import TrainingArguments
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig, unset_hf_deepspeed_config

    class RecipeTrainingArguments(TrainingArguments):
        @property
        def world_size(self) -> int:  # the recipe's GPUs, not this process's
            return gpus

    with tempfile.TemporaryDirectory(prefix="mft-recipes-ds-") as output_dir:
        arguments = RecipeTrainingArguments(
            output_dir=output_dir,
            per_device_train_batch_size=config.micro_batch_size,
            gradient_accumulation_steps=config.gradient_accumulation_steps,
            learning_rate=config.learning_rate,
            weight_decay=config.weight_decay or 0.0,
            max_grad_norm=config.max_grad_norm if config.max_grad_norm is not None else 1.0,
            bf16=config.bf16 is True,
            fp16=config.fp16 is True,
            report_to="none",
            use_cpu=True,  # this process's device: it changes no DeepSpeed value, and lets bf16 be asked here
        )
    section = json.loads(json.dumps(dict(config.deepspeed)))
    hf_config = HfTrainerDeepSpeedConfig(section)
    try:
        hf_config.trainer_config_process(arguments)
        model = SimpleNamespace(config=model_config)  # the Trainer reads its hidden size
        hf_config.trainer_config_finalize(arguments, model, num_training_steps)
    finally:
        unset_hf_deepspeed_config()  # it registers itself globally: transformers would think ZeRO-3 is on
    resolved: dict[str, Any] = hf_config.config
    return resolved


def deepspeed_problems(section: dict[str, Any], gpus: int) -> list[Problem]:
    """What DeepSpeed's own config classes say of a resolved section on `gpus` data-parallel ranks: the
    strict ZeRO model, the batch arithmetic, and any value still "auto"."""
    from deepspeed.runtime.config import DeepSpeedConfig

    left = [key for key, value in _leaves(section) if value == "auto"]
    if left:
        message = f"still 'auto' after the HF Trainer's resolution: {', '.join(left)}"
        return [Problem(message, ("deepspeed",), "deepspeed-auto-left")]
    try:
        with _process_group():
            DeepSpeedConfig(json.loads(json.dumps(section)), mpu=_DataParallelWorld(gpus))
    except Exception as error:  # pydantic ValidationError, DeepSpeed's assertions on batch sizes
        return [Problem(f"DeepSpeed refuses it: {error_text(error)}", ("deepspeed",), "deepspeed-refused")]
    return []


def error_text(error: BaseException, limit: int = 12) -> str:
    """A library's error as a problem shows it: its first `limit` non-blank lines (pydantic's run long)."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    return "\n".join(lines[:limit]) + ("\n..." if len(lines) > limit else "")


class _DataParallelWorld:
    """The one question DeepSpeedConfig asks its `mpu` (model-parallel unit): how many data-parallel ranks."""

    def __init__(self, size: int) -> None:
        self.size = size

    def get_data_parallel_world_size(self) -> int:
        return self.size


@contextlib.contextmanager
def _process_group() -> Iterator[None]:
    """DeepSpeedConfig asks deepspeed.comm for this process's rank before it asks its `mpu` for the world
    size, and without a process group it takes a world of one rank, so the batch arithmetic would be
    checked for one GPU (deepspeed/runtime/config.py, DeepSpeedConfig.__init__). A group of this one
    process (gloo over an in-memory store: no port, no network), which deepspeed.comm wraps as it wraps
    any group a user starts (init_distributed), answers it; the group is gone afterwards. A group that is
    already there (a real launch) is used as it is. On a machine with no GPU, DeepSpeed's CPU accelerator
    builds its shared-memory op the first time it wraps a group (about a minute, cached in
    ~/.cache/torch_extensions)."""
    import deepspeed.comm
    import torch.distributed

    if torch.distributed.is_initialized():
        deepspeed.comm.init_distributed(dist_backend="gloo", auto_mpi_discovery=False, verbose=False)
        yield
        return
    torch.distributed.init_process_group("gloo", store=torch.distributed.HashStore(), rank=0, world_size=1)
    try:
        deepspeed.comm.init_distributed(dist_backend="gloo", auto_mpi_discovery=False, verbose=False)
        yield
    finally:
        torch.distributed.destroy_process_group()


def _leaves(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, node
