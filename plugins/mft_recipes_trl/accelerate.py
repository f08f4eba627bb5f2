"""The accelerate config a multi-GPU TRL run is launched with: the recipe's DeepSpeed section in
accelerate's own words, as TRL's documentation launches DeepSpeed (`accelerate launch --config_file
zero3.yaml ...`; trl/accelerate_configs/zero3.yaml is the same shape).

accelerate's `deepspeed_config` keys are those of its DeepSpeedPlugin (accelerate/utils/dataclasses.py):
the ZeRO stage, where optimizer states and parameters are offloaded, `zero3_init_flag` (build the model
partitioned, with deepspeed.zero.Init) and `zero3_save_16bit_model` (gather the weights when saving, so
the adapter or model loads elsewhere). The batch, accumulation, clipping and precision values it leaves
"auto" are filled by the Trainer from the TRL config, so the two files cannot disagree.

`accelerate_config(section, processes, ...)` is all a launcher needs (a multi-node one sets
`num_machines` and the rank on top); it imports nothing.
"""

from __future__ import annotations

from typing import Any


def deepspeed_plugin_config(section: dict[str, Any]) -> dict[str, Any]:
    """A DeepSpeed config (the axolotl recipes' inline section) as accelerate's `deepspeed_config`, key for
    key as DeepSpeedPlugin maps its own onto a DeepSpeed config (`plugin_to_config_mapping`)."""
    zero = section.get("zero_optimization") or {}
    stage = int(zero.get("stage", 0))
    plugin: dict[str, Any] = {
        "zero_stage": stage,
        "offload_optimizer_device": (zero.get("offload_optimizer") or {}).get("device", "none"),
        "offload_param_device": (zero.get("offload_param") or {}).get("device", "none"),
    }
    if stage == 3:
        plugin["zero3_init_flag"] = True
        plugin["zero3_save_16bit_model"] = bool(zero.get("stage3_gather_16bit_weights_on_model_save"))
    return plugin


def accelerate_config(
    section: dict[str, Any] | None, processes: int, *, bf16: bool, num_machines: int = 1
) -> dict[str, Any]:
    """An accelerate config file for `processes` processes in all, on `num_machines` machines: DeepSpeed
    with the plugin config of `section`, or plain data parallel without one."""
    config: dict[str, Any] = {"compute_environment": "LOCAL_MACHINE"}
    if section is not None:
        config["distributed_type"] = "DEEPSPEED"
        config["deepspeed_config"] = deepspeed_plugin_config(section)
    else:
        config["distributed_type"] = "MULTI_GPU"
    config.update(
        {
            "mixed_precision": "bf16" if bf16 else "no",
            "num_machines": num_machines,
            "num_processes": processes,
            "machine_rank": 0,
            "main_training_function": "main",
            "rdzv_backend": "static",
            "same_network": True,
            "use_cpu": False,
        }
    )
    return config
