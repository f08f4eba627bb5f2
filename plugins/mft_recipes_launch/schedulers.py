"""What starts the run on every node, by scheduler: the scripts and hostfile of a bundle and the steps
its README lists.

- `slurm`: `train.sbatch` asks for the nodes, one task each; the first node of the allocation is the main
  process (`scontrol show hostnames`); `srun` runs `axolotl preprocess` (the target's prepare step) once on
  it, then `node.sh` once per node, which starts `accelerate launch` with the node's rank
  (`SLURM_NODEID`).
- `torchrun`: `node.sh` is run on every node by you or any scheduler, with torchrun's variables:
  `NODE_RANK`, `MASTER_ADDR`, `MASTER_PORT`; `accelerate launch` runs torchrun's agent
  (`torch.distributed.run`) with them.
- `deepspeed`: a hostfile and `launch.sh`, run once on the first host: `accelerate launch` runs DeepSpeed's
  launcher, which reaches every host of the hostfile over ssh (pdsh).

The scripts name the bundle's files and the launch folder by their absolute paths: every node must see
both at those paths (`launch` checks that they are on shared storage), and Slurm runs a copy of the batch
script from its spool folder, not from the bundle.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from mft_recipes import Cluster, TrainingLaunch, __version__

SCHEDULERS = ("slurm", "torchrun", "deepspeed")
ACCELERATE_CONFIG = "accelerate.yaml"
NODE_SCRIPT = "node.sh"
SBATCH_SCRIPT = "train.sbatch"
LAUNCH_SCRIPT = "launch.sh"
HOSTFILE = "hostfile"
# The shell variables a node's command reads, written into it as "$NAME".
NODE_VARIABLES = ("NODE_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class Step:
    """One command of the README: where to run it and the command line."""

    where: str
    command: str


@dataclass(frozen=True)
class Run:
    """What every scheduler's files say: the recipe, the target's part, the cluster, the bundle's folder
    and the launch folder (both absolute), and the main process's port."""

    recipe: str
    training: TrainingLaunch
    cluster: Cluster
    folder: Path
    launch_dir: Path
    port: int
    setup: tuple[str, ...] = ()

    def start(self) -> str:
        """The lines every script begins with, after its header: strict mode, the user's setup lines
        (`--setup`: loading modules, activating the environment that has the trainer), the launch folder."""
        setup = "".join(f"{line}\n" for line in self.setup)
        return f"set -euo pipefail\n{setup}cd {shlex.quote(str(self.launch_dir))}\n"

    def other_ranks(self) -> str:
        """`1 on the other` or `1 to 5 on the others`: the node ranks but the first."""
        last = self.cluster.nodes - 1
        return "1 on the other" if last == 1 else f"1 to {last} on the others"

    def node_command(self) -> str:
        """What a node runs: the target's command with this node's `accelerate launch` options."""
        return shell_words(self.training.command(node_options(self.folder / ACCELERATE_CONFIG)))

    def prepare(self) -> str | None:
        return shell_words(list(self.training.prepare)) if self.training.prepare else None


@dataclass(frozen=True)
class SchedulerFiles:
    """A scheduler's part of the bundle: its scripts (name → text; all executable) and hostfile, and the
    steps that start the run."""

    scripts: dict[str, str]
    hostfile: str | None
    steps: tuple[Step, ...]


def shell_words(argv: list[str]) -> str:
    """A command line for bash: each word quoted, but `$NAME` of the node variables, which expand on the
    node."""
    return " ".join(
        f'"{word}"' if word[1:] in NODE_VARIABLES and word[:1] == "$" else shlex.quote(word) for word in argv
    )


def node_options(accelerate: Path) -> list[str]:
    """The options of `accelerate launch` on one node: the bundle's config, this node's rank and where the
    main process listens (from the node's environment)."""
    return [
        "--config_file", str(accelerate),
        "--machine_rank", "$NODE_RANK",
        "--main_process_ip", "$MASTER_ADDR",
        "--main_process_port", "$MASTER_PORT",
    ]  # fmt: skip


def _header(title: str, recipe: str, scheduler: str) -> str:
    return (
        "#!/usr/bin/env bash\n"
        f"# {title}\n"
        f"# Written by mft-recipes {__version__} `launch` for recipe {recipe} (scheduler {scheduler}); "
        "README.md says how to run it.\n"
    )


def slurm(run: Run, sbatch_options: tuple[str, ...] = ()) -> SchedulerFiles:
    cluster, folder = run.cluster, run.folder
    node_script = (
        _header(
            "One node's part of the run: started by train.sbatch, once per node (srun).", run.recipe, "slurm"
        )
        + "# Slurm numbers the allocation's nodes from 0 in the order `scontrol show hostnames` lists them.\n"
        + "NODE_RANK=${SLURM_NODEID:?run by srun from train.sbatch, one task per node}\n"
        + ': "${MASTER_ADDR:?set by train.sbatch: the first node of the allocation}"\n'
        + ': "${MASTER_PORT:?set by train.sbatch}"\n'
        + run.start()
        + f"exec {run.node_command()}\n"
    )
    prepare = run.prepare()
    sbatch = (
        "#!/usr/bin/env bash\n"
        f"#SBATCH --job-name={run.recipe}\n"
        f"#SBATCH --nodes={cluster.nodes}\n"
        "#SBATCH --ntasks-per-node=1\n"
        f"#SBATCH --gpus-per-node={cluster.gpus_per_node}\n"
        "#SBATCH --exclusive\n"
        f"#SBATCH --output={folder}/slurm-%j.out\n"
        + "".join(f"#SBATCH {option}\n" for option in sbatch_options)
        + f"# {run.recipe} on {cluster.nodes} nodes × {cluster.gpus_per_node} GPUs ({cluster.gpu}).\n"
        f"# Written by mft-recipes {__version__} `launch`; README.md says how to run it.\n"
        + run.start()
        + "# The rendezvous: the first node of the allocation hosts the main process.\n"
        'mapfile -t nodes < <(scontrol show hostnames "$SLURM_JOB_NODELIST")\n'
        f"if (( ${{#nodes[@]}} != {cluster.nodes} )); then\n"
        f'  echo "train.sbatch: the allocation has ${{#nodes[@]}} nodes, the run is written for {cluster.nodes}" >&2\n'
        "  exit 1\n"
        "fi\n"
        "MASTER_ADDR=${nodes[0]}\n"
        f"MASTER_PORT=${{MASTER_PORT:-{run.port}}}\n"
        "export MASTER_ADDR MASTER_PORT\n"
        + (
            "# Tokenize the data once, on the first node, before any rank needs it.\n"
            f'srun --nodes=1 --ntasks=1 --nodelist="$MASTER_ADDR" {prepare}\n'
            if prepare
            else ""
        )
        + f"# One task per node, with the node's GPUs and CPUs (a step's task gets one CPU unless told); each\n"
        f"# starts accelerate, which starts the node's {cluster.gpus_per_node} ranks.\n"
        f"srun --nodes={cluster.nodes} --ntasks={cluster.nodes} --ntasks-per-node=1 "
        f'--gpus-per-node={cluster.gpus_per_node} --cpus-per-task="$SLURM_CPUS_ON_NODE" --kill-on-bad-exit=1 '
        f"bash {shlex.quote(str(folder / NODE_SCRIPT))}\n"
    )
    return SchedulerFiles(
        scripts={SBATCH_SCRIPT: sbatch, NODE_SCRIPT: node_script},
        hostfile=None,
        steps=(Step("a Slurm login node", f"sbatch {shlex.quote(str(folder / SBATCH_SCRIPT))}"),),
    )


def torchrun(run: Run) -> SchedulerFiles:
    last = run.cluster.nodes - 1
    node_script = (
        _header(
            f"One node's part of the run: run it on each of the {run.cluster.nodes} nodes, with torchrun's variables.",
            run.recipe,
            "torchrun",
        )
        + f': "${{NODE_RANK:?set NODE_RANK: 0 on the node at MASTER_ADDR, {run.other_ranks()}}}"\n'
        + ': "${MASTER_ADDR:?set MASTER_ADDR: the address of node 0, which every node can reach}"\n'
        + f"MASTER_PORT=${{MASTER_PORT:-{run.port}}}\n"
        + f"if [[ ! $NODE_RANK =~ ^[0-9]+$ ]] || (( NODE_RANK > {last} )); then\n"
        + f'  echo "node.sh: NODE_RANK must be 0 to {last}, not $NODE_RANK" >&2\n'
        + "  exit 2\n"
        + "fi\n"
        + run.start()
        + f"exec {run.node_command()}\n"
    )
    node = shlex.quote(str(run.folder / NODE_SCRIPT))
    steps = [
        Step(
            f"every node, each with its NODE_RANK (0 to {last})",
            f"NODE_RANK=N MASTER_ADDR=NODE0 bash {node}",
        )
    ]
    prepare = run.prepare()
    if prepare:
        steps.insert(
            0,
            Step(
                "one node, once, before the others",
                " && ".join([*run.setup, f"cd {shlex.quote(str(run.launch_dir))}", prepare]),
            ),
        )
    return SchedulerFiles(scripts={NODE_SCRIPT: node_script}, hostfile=None, steps=tuple(steps))


def deepspeed(run: Run, hosts: tuple[str, ...]) -> SchedulerFiles:
    from mft_recipes_launch.hostfile import format_hostfile

    command = shell_words(run.training.command(["--config_file", str(run.folder / ACCELERATE_CONFIG)]))
    prepare = run.prepare()
    script = (
        _header(
            f"The whole run, started once on {hosts[0]}: DeepSpeed's launcher reaches the hostfile's hosts over ssh.",
            run.recipe,
            "deepspeed",
        )
        + run.start()
        + (f"# Tokenize the data once, here, before any rank needs it.\n{prepare}\n" if prepare else "")
        + f"exec {command}\n"
    )
    return SchedulerFiles(
        scripts={LAUNCH_SCRIPT: script},
        hostfile=format_hostfile(hosts, run.cluster.gpus_per_node),
        steps=(Step(f"{hosts[0]} (the first host)", f"bash {shlex.quote(str(run.folder / LAUNCH_SCRIPT))}"),),
    )
