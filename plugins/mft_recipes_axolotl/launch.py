"""The axolotl target's part of a multi-node launch (`mft-recipes launch`): the rendered config, the
accelerate keys axolotl needs, `axolotl train --launcher accelerate` on each node, `axolotl preprocess` once
before, and the paths every node must share.

The accelerate config carries no `mixed_precision` and no ZeRO keys: axolotl gives DeepSpeed its own
config (the `deepspeed:` section, through the HF Trainer's `hf_ds_config`), and accelerate then refuses a
config file that sets those too (`DeepSpeedPlugin._deepspeed_config_checks`: "When using
`deepspeed_config_file`, the following accelerate config variables will be ignored"). It does say
`distributed_type: DEEPSPEED`, which makes `accelerate launch` use DeepSpeed's launcher on a hostfile
(`deepspeed_launcher` in accelerate/commands/launch.py); a config without DeepSpeed runs as DDP.
"""

from __future__ import annotations

from pathlib import Path
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
# axolotl's defaults where a config leaves the key out (axolotl/common/const.py; the config model's
# output_dir default).
DEFAULT_PREPARED_PATH = "last_run_prepared"
DEFAULT_OUTPUT_DIR = "./model-out"

OUTPUT_WHY = (
    "every node writes its ranks' part of each checkpoint there (ZeRO-3 saves each rank's partition) and "
    "the first node the final model; on one node's own disk the checkpoints end up split across machines "
    "and the run cannot resume from them"
)
PREPARED_WHY = (
    "axolotl tokenizes the data into it once, under a file lock, and every rank loads it from there; on a "
    "disk of each node's own, every node prepares the data again, each on its own"
)
DATASET_WHY = "every rank reads the training data from it"
MODEL_WHY = "every rank loads the base model's weights from it"
DEEPSPEED_WHY = "every rank reads the DeepSpeed config from it"


def axolotl_launch(request: LaunchRequest) -> TrainingLaunch:
    """The files, accelerate keys, command and shared paths of an axolotl run on `request.cluster`."""
    document = request.rendered.document
    config = str(request.folder / CONFIG)
    deepspeed = "deepspeed" in document
    accelerate: dict[str, Any] = {
        "compute_environment": "LOCAL_MACHINE",
        "distributed_type": "DEEPSPEED" if deepspeed else "MULTI_GPU",
        "main_training_function": "main",
    }
    if deepspeed:
        accelerate["deepspeed_config"] = {}

    def command(accelerate_options: list[str]) -> list[str]:
        return ["axolotl", "train", config, "--launcher", "accelerate", "--", *accelerate_options]

    return TrainingLaunch(
        files=(
            BundleFile(CONFIG, format_document(request.rendered, "yaml"), kind=request.rendered.target.kind),
        ),
        accelerate=accelerate,
        command=command,
        prepare=("axolotl", "preprocess", config),
        shared_paths=tuple(_shared_paths(document, request.launch_dir)),
    )


def _shared_paths(document: dict[str, Any], launch_dir: Path) -> list[SharedPath]:
    paths = [
        SharedPath("output_dir", str(document.get("output_dir") or DEFAULT_OUTPUT_DIR), OUTPUT_WHY),
        SharedPath(
            "dataset_prepared_path",
            str(document.get("dataset_prepared_path") or DEFAULT_PREPARED_PATH),
            PREPARED_WHY,
        ),
    ]
    for index, dataset in enumerate(document.get("datasets") or []):
        path = dataset.get("path") if isinstance(dataset, dict) else None
        if isinstance(path, str) and reads_from_disk(path, launch_dir):
            paths.append(SharedPath(f"datasets[{index}].path", path, DATASET_WHY, must_exist=True))
    base_model = document.get("base_model")
    if isinstance(base_model, str) and reads_from_disk(base_model, launch_dir, files=False):
        paths.append(SharedPath("base_model", base_model, MODEL_WHY, must_exist=True))
    if isinstance(document.get("deepspeed"), str):
        paths.append(SharedPath("deepspeed", document["deepspeed"], DEEPSPEED_WHY, must_exist=True))
    return paths
