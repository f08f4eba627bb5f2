"""The trl target's part of a multi-node launch (`mft-recipes launch --target trl`): the rendered TRL
config, the accelerate config `render --target trl` writes beside it (the recipe's DeepSpeed section as
accelerate's DeepSpeedPlugin keys; `launch` adds the cluster's), `accelerate launch ... -m trl.scripts.sft`
on each node, and the paths every node must share.

Unlike axolotl, TRL takes DeepSpeed from the accelerate config (the TRL config has no DeepSpeed key), and
it tokenizes the data in each run (`datasets.map`, the main process first), so there is no step to run
once before training and no prepared-data folder to share.
"""

from __future__ import annotations

from typing import Any

from mft_recipes import (
    BundleFile,
    LaunchRequest,
    SharedPath,
    TrainingLaunch,
    format_document,
    reads_from_disk,
)

CONFIG = "config.yml"
# The accelerate keys that are the trainer's; `launch` sets the cluster's (machines, processes, ranks,
# rendezvous) itself.
TRAINER_KEYS = ("compute_environment", "distributed_type", "deepspeed_config", "mixed_precision", "use_cpu")

OUTPUT_WHY = (
    "every node writes its ranks' part of each ZeRO-3 checkpoint there and the first node the final model; "
    "on one node's own disk the checkpoints end up split across machines and the run cannot resume"
)
DATASET_WHY = "every rank loads the training data from it"
MODEL_WHY = "every rank loads the base model's weights from it"


def trl_cluster_launch(request: LaunchRequest) -> TrainingLaunch:
    """The files, accelerate keys, command and shared paths of a TRL run on `request.cluster`."""
    from mft_recipes_trl.accelerate import accelerate_config

    rendered = request.rendered
    document = rendered.document
    config = str(request.folder / CONFIG)
    own = rendered.companions.get("accelerate") or accelerate_config(
        None, request.cluster.world_size, bf16=document.get("bf16") is not False
    )
    accelerate = {key: own[key] for key in TRAINER_KEYS if key in own}

    def command(accelerate_options: list[str]) -> list[str]:
        return ["accelerate", "launch", *accelerate_options, "-m", "trl.scripts.sft", "--config", config]

    return TrainingLaunch(
        files=(BundleFile(CONFIG, format_document(rendered, "yaml"), kind=rendered.target.kind),),
        accelerate=accelerate,
        command=command,
        shared_paths=tuple(_shared_paths(document, request)),
    )


def _shared_paths(document: dict[str, Any], request: LaunchRequest) -> list[SharedPath]:
    # TRL's output_dir default (transformers' TrainingArguments) where the config leaves it out.
    paths = [SharedPath("output_dir", str(document.get("output_dir") or "trainer_output"), OUTPUT_WHY)]
    for index, dataset in enumerate(document.get("datasets") or []):
        data_files = dataset.get("data_files") if isinstance(dataset, dict) else None
        if isinstance(data_files, str) and reads_from_disk(data_files, request.launch_dir):
            key = f"datasets[{index}].data_files"
            paths.append(SharedPath(key, data_files, DATASET_WHY, must_exist=True))
    model = document.get("model_name_or_path")
    if isinstance(model, str) and reads_from_disk(model, request.launch_dir, files=False):
        paths.append(SharedPath("model_name_or_path", model, MODEL_WHY, must_exist=True))
    return paths
