"""accelerate configs: the cluster's keys a launch bundle adds to the trainer's, the document kind
`validate` knows them as (schemas/accelerate-config.schema.json, accelerate 1.13's `ClusterConfig`, whose
`from_yaml_file` refuses unknown keys too), and the checks beyond the schema.

Every node of a bundle reads the same file; what differs per node (`--machine_rank`, and for Slurm the
main process's address) comes from the scheduler's environment on the `accelerate launch` command line,
which takes precedence over the file. The rendezvous is static: node ranks are the scheduler's node ids
and the first node hosts the store, as torchrun's `--node-rank --master-addr --master-port` (accelerate
passes them so with `same_network: true`, `prepare_deepspeed_cmd_env` in accelerate/utils/launch.py).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mft_recipes import Cluster, Problem, TrainingLaunch, ValidationContext

KIND = "accelerate"
SCHEMA = "accelerate-config"
# DeepSpeed's launcher from accelerate: `standard` is torchrun on every node (what Slurm's srun and a
# per-node script start); `pdsh` is DeepSpeed's own launcher, started once, reaching every host of the
# hostfile over ssh.
PER_NODE_LAUNCHER = "standard"
HOSTFILE_LAUNCHER = "pdsh"


def is_accelerate_config(document: Any) -> bool:
    return (
        isinstance(document, dict)
        and "distributed_type" in document
        and "base_model" not in document
        and "zero_optimization" not in document
    )


def cluster_config(
    training: TrainingLaunch,
    cluster: Cluster,
    *,
    port: int,
    hostfile: Path | None = None,
    main_host: str | None = None,
) -> dict[str, Any]:
    """The trainer's accelerate keys with the cluster's: machines, processes in all, the static rendezvous on
    `port`, and DeepSpeed's multi-node launcher (its hostfile and the first host when `hostfile` is given)."""
    config = copy.deepcopy(training.accelerate)
    config.update(
        {
            "num_machines": cluster.nodes,
            "num_processes": cluster.world_size,
            "machine_rank": 0,
            "rdzv_backend": "static",
            "same_network": True,
            "main_process_port": port,
        }
    )
    if main_host is not None:
        config["main_process_ip"] = main_host
    if config.get("distributed_type") == "DEEPSPEED":
        deepspeed = config.setdefault("deepspeed_config", {})
        if hostfile is not None:
            deepspeed.update(
                {"deepspeed_multinode_launcher": HOSTFILE_LAUNCHER, "deepspeed_hostfile": str(hostfile)}
            )
        else:
            deepspeed["deepspeed_multinode_launcher"] = PER_NODE_LAUNCHER
    return config


def check_processes(document: Any, context: ValidationContext) -> Iterator[Problem]:
    """accelerate starts `num_processes // num_machines` processes on each machine: a total that is not a
    multiple of the machines silently starts fewer ranks than it says. With `validate --gpus N` (and in a
    launch bundle, the world size) the total must be N."""
    processes, machines = document.get("num_processes"), document.get("num_machines", 1)
    if not isinstance(processes, int) or not isinstance(machines, int) or machines < 1 or processes < 1:
        return
    if processes % machines:
        yield Problem(
            f"num_processes {processes} is not a multiple of num_machines {machines}: accelerate starts "
            f"{processes // machines} per machine, {processes // machines * machines} in all",
            ("num_processes",),
            code="accelerate-world-size",
        )
    if context.gpus is not None and processes != context.gpus:
        yield Problem(
            f"num_processes {processes} is not the {context.gpus} GPUs the run has",
            ("num_processes",),
            code="accelerate-world-size",
        )


def check_hostfile_launcher(document: Any, context: ValidationContext) -> Iterator[Problem]:
    """On several machines, every DeepSpeed launcher but `standard` (torchrun, started on each node) is
    DeepSpeed's own, which accelerate runs with `--hostfile` (`prepare_deepspeed_cmd_env`); without the
    file it starts on this machine only ("Unable to find hostfile, will proceed with training with local
    resources only", deepspeed/launcher/runner.py)."""
    deepspeed = document.get("deepspeed_config") or {}
    if document.get("distributed_type") != "DEEPSPEED" or document.get("num_machines", 1) < 2:
        return
    launcher = deepspeed.get("deepspeed_multinode_launcher", HOSTFILE_LAUNCHER)  # accelerate's default
    if launcher != PER_NODE_LAUNCHER and not deepspeed.get("deepspeed_hostfile"):
        yield Problem(
            f"deepspeed_multinode_launcher {launcher!r} on {document['num_machines']} machines reads a "
            "hostfile: give deepspeed_hostfile, or use `standard` and start every node",
            ("deepspeed_config", "deepspeed_hostfile"),
            code="accelerate-hostfile",
        )
