"""What a target gives `mft-recipes launch`: its training files for a cluster and the command that starts
training on each node. The launch plugin wraps them in a scheduler's files (a Slurm batch script, a
per-node script for torchrun, a DeepSpeed hostfile) and an accelerate config; the target says only what
its trainer needs, so one bundle layout serves every trainer that runs under `accelerate launch`.

A target supplies it through `Target.cluster_launch`, a function of a `LaunchRequest` returning a
`TrainingLaunch`; a target without one cannot be launched on several nodes (`launch` says so).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mft_recipes.render import RenderedDocument

# What a local dataset file is called; anything else that does not exist is a hub dataset id to the
# trainers (axolotl/utils/data/shared.py and `datasets.load_dataset` try the path on disk first).
DATA_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet", ".arrow", ".txt", ".gz", ".zst")


@dataclass(frozen=True)
class Cluster:
    """Where a run goes: `nodes` machines of `gpus_per_node` GPUs each, of the GPU table's `gpu`."""

    nodes: int
    gpus_per_node: int
    gpu: str

    @property
    def world_size(self) -> int:
        """The processes the run starts, one per GPU: what DeepSpeed ZeRO-3 shards over."""
        return self.nodes * self.gpus_per_node


@dataclass(frozen=True)
class LaunchRequest:
    """What `launch` asks a target: the rendered recipe, the cluster, the bundle's folder (absolute, as
    every node sees it: the scripts name its files by it), and the folder each node starts the run in
    (absolute; the relative paths in the training config resolve against it, as the trainer resolves them
    against its working directory)."""

    rendered: RenderedDocument
    cluster: Cluster
    folder: Path
    launch_dir: Path


@dataclass(frozen=True)
class BundleFile:
    """A file of the bundle: its name in the bundle's folder, its text, and the document kind it is
    validated as before anything is written (None: not a document mft-recipes knows)."""

    name: str
    text: str
    kind: str | None = None


@dataclass(frozen=True)
class SharedPath:
    """A path in the training files that every node must see at the same place: the config key that names
    it, the path as written (relative ones resolve against the launch folder), why a folder of one node
    breaks the run, and whether it must exist already (the data does; an output folder is created)."""

    key: str
    path: str
    why: str
    must_exist: bool = False


@dataclass(frozen=True)
class TrainingLaunch:
    """A target's part of a launch bundle.

    - `files`: the training config(s), each validated as its kind;
    - `accelerate`: the trainer's keys of the accelerate config (`distributed_type`, `deepspeed_config`,
      `mixed_precision` where the trainer takes it from there); `launch` adds the cluster's (machines,
      processes, rendezvous, DeepSpeed's multi-node launcher);
    - `command(accelerate_options)`: what each node runs, given the options of `accelerate launch`
      (`--config_file ... --machine_rank ...`), e.g. `axolotl train config.yml --launcher accelerate --
      OPTIONS`;
    - `prepare`: a command to run once, on one node, before training (tokenizing the data), or empty;
    - `shared_paths`: the paths every node must see (outputs, data, caches), which `launch` refuses when
      they are on one machine's own disk.
    """

    files: tuple[BundleFile, ...]
    accelerate: dict[str, Any]
    command: Callable[[list[str]], list[str]]
    prepare: tuple[str, ...] = ()
    shared_paths: tuple[SharedPath, ...] = field(default=())


def reads_from_disk(path: str, launch_dir: Path, *, files: bool = True) -> bool:
    """Whether a trainer reads `path` from disk rather than the hub (so every node needs it): it exists
    from the launch folder, or it is written as a path (absolute, `./`, `~`) or, for data (`files`), a
    file name."""
    if (launch_dir / Path(path).expanduser()).exists():
        return True
    written_as_path = path.startswith(("/", "./", "../", "~"))
    return written_as_path or (files and path.lower().endswith(DATA_SUFFIXES))
