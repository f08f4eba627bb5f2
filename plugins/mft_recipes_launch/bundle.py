"""A launch bundle: the target's training files, the accelerate config, the scheduler's scripts (and
hostfile), a README of the exact commands and bundle.json, each checked before anything is written, then
written as one folder that appears whole or not at all.

Checks: every document is validated as its kind for the run's world size and GPU (the training config by
the target's validators, the accelerate config against accelerate's schema and the world size), every
script by `bash -n`, the hostfile as DeepSpeed's launcher reads it and against the nodes and GPUs,
bundle.json against schemas/launch-bundle.schema.json; and every path the run shares between nodes (the
bundle, the launch folder, the target's outputs, data and caches) must be on storage every node mounts.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mft_recipes import (
    Architectures,
    Cluster,
    LaunchRequest,
    RenderedDocument,
    SharedPath,
    __version__,
    check_against_schema,
    check_document,
)
from mft_recipes_launch import schedulers
from mft_recipes_launch.accelerate import KIND as ACCELERATE_KIND
from mft_recipes_launch.accelerate import cluster_config
from mft_recipes_launch.hostfile import HostfileError, parse_hostfile
from mft_recipes_launch.schedulers import ACCELERATE_CONFIG, HOSTFILE, Run, Step
from mft_recipes_launch.storage import Placement, place, read_mounts

MANIFEST = "bundle.json"
README = "README.md"
DEFAULT_PORT = 29500

BUNDLE_WHY = "every node reads the training config and the scripts from the bundle"
LAUNCH_DIR_WHY = "every node starts the run in it, and the config's relative paths resolve against it"


class LaunchUsageError(ValueError):
    """A launch that cannot be done as asked (exit 2): a target without launch support, hosts that do not
    match the nodes, a folder that is not a bundle."""


class LaunchRefused(ValueError):
    """A bundle that would break at scale (exit 1): each problem, one line naming the file or key."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class LaunchOptions:
    """How the run is started: the scheduler, the hosts of a DeepSpeed hostfile, the main process's port,
    the folders declared as mounted on every node, extra `#SBATCH` lines, and lines every script runs
    first (loading modules, activating the environment that has the trainer)."""

    scheduler: str
    hosts: tuple[str, ...] = ()
    port: int = DEFAULT_PORT
    shared: tuple[Path, ...] = ()
    sbatch_options: tuple[str, ...] = ()
    setup: tuple[str, ...] = ()


@dataclass
class Bundle:
    """A checked bundle, ready to write: its files by name, which are scripts, and what its README says."""

    run: Run
    scheduler: str
    target: str
    files: dict[str, str]
    scripts: frozenset[str]
    steps: tuple[Step, ...]
    shared: list[dict[str, Any]]
    plan: dict[str, Any] | None
    # `--target NAME` where the bundle is not for the recipe's own target: what `render` and `plan` need
    # to see the same run.
    target_option: str = ""
    warnings: list[str] = field(default_factory=list)

    def manifest(self) -> dict[str, Any]:
        """What bundle.json holds and `launch --json` prints (schemas/launch-bundle.schema.json)."""
        cluster = self.run.cluster
        return {
            "recipe": self.run.recipe,
            "target": self.target,
            "scheduler": self.scheduler,
            "mft_recipes_version": __version__,
            "nodes": cluster.nodes,
            "gpus_per_node": cluster.gpus_per_node,
            "world_size": cluster.world_size,
            "gpu": cluster.gpu,
            "folder": str(self.run.folder),
            "launch_dir": str(self.run.launch_dir),
            "files": sorted([*self.files, MANIFEST]),
            "steps": [{"where": step.where, "command": step.command} for step in self.steps],
            "shared_paths": self.shared,
            "plan": self.plan,
            "warnings": self.warnings,
        }


def build_bundle(
    rendered: RenderedDocument,
    cluster: Cluster,
    folder: Path,
    launch_dir: Path,
    options: LaunchOptions,
    architectures: Architectures,
) -> Bundle:
    """Every file of the bundle for `rendered` on `cluster`, checked; raises LaunchUsageError or
    LaunchRefused."""
    target = rendered.target
    if target.cluster_launch is None:
        raise LaunchUsageError(
            f"target {target.name!r} has no multi-node launch (a target gives one as Target.cluster_launch; "
            "docs/multinode.md)"
        )
    training = target.cluster_launch(LaunchRequest(rendered, cluster, folder, launch_dir))
    run = Run(rendered.recipe.name, training, cluster, folder, launch_dir, options.port, options.setup)
    deepspeed = training.accelerate.get("distributed_type") == "DEEPSPEED"
    if options.scheduler == "deepspeed":
        if not deepspeed:
            raise LaunchUsageError(
                f"--scheduler deepspeed starts DeepSpeed's launcher, and recipe {run.recipe} renders no DeepSpeed "
                "section: use --scheduler slurm or torchrun"
            )
        _check_hosts(options.hosts, cluster)
        started = schedulers.deepspeed(run, options.hosts)
        accelerate = cluster_config(
            training, cluster, port=options.port, hostfile=folder / HOSTFILE, main_host=options.hosts[0]
        )
    else:
        if options.hosts:
            raise LaunchUsageError(
                "--hosts names a DeepSpeed hostfile's hosts: give it with --scheduler deepspeed"
            )
        started = (
            schedulers.slurm(run, options.sbatch_options)
            if options.scheduler == "slurm"
            else schedulers.torchrun(run)
        )
        accelerate = cluster_config(training, cluster, port=options.port)
    files = {file.name: file.text for file in training.files}
    files[ACCELERATE_CONFIG] = _accelerate_text(accelerate, run, options.scheduler)
    files.update(started.scripts)
    if started.hostfile is not None:
        files[HOSTFILE] = started.hostfile
    kinds = {file.name: file.kind for file in training.files} | {ACCELERATE_CONFIG: ACCELERATE_KIND}
    problems = _check_documents(files, kinds, cluster) + _check_scripts(started.scripts)
    if started.hostfile is not None:
        problems += _check_hostfile(started.hostfile, cluster)
    mounts = read_mounts()
    needed = [
        SharedPath("bundle (-o)", str(folder), BUNDLE_WHY),
        SharedPath("launch folder", str(launch_dir), LAUNCH_DIR_WHY),
        *training.shared_paths,
    ]
    placements = [
        (shared, place(launch_dir / Path(shared.path).expanduser(), mounts, options.shared))
        for shared in needed
    ]
    warnings: list[str] = []
    problems += _check_shared(placements, warnings)
    if problems:
        raise LaunchRefused(problems)
    plan = _plan(rendered, cluster, architectures, warnings)
    bundle = Bundle(
        run=run,
        scheduler=options.scheduler,
        target=target.name,
        files=files,
        scripts=frozenset(started.scripts),
        steps=started.steps,
        shared=[_shared_json(shared, placement) for shared, placement in placements],
        plan=plan,
        target_option="" if target.name == rendered.recipe.target else f" --target {target.name}",
        warnings=warnings,
    )
    from mft_recipes_launch.readme import readme

    bundle.files[README] = readme(bundle)
    manifest_problems = [
        f"{MANIFEST}: {problem}" for problem in check_against_schema(bundle.manifest(), "launch-bundle")
    ]
    if manifest_problems:  # a bug of ours, not the user's input: say so plainly rather than write it
        raise LaunchRefused(manifest_problems)
    return bundle


def _check_hosts(hosts: tuple[str, ...], cluster: Cluster) -> None:
    if not hosts:
        raise LaunchUsageError(
            f"--scheduler deepspeed writes a hostfile: name the {cluster.nodes} hosts with --hosts HOST,HOST,... "
            "(the first one starts the run)"
        )
    if len(hosts) != cluster.nodes:
        raise LaunchUsageError(
            f"--hosts names {len(hosts)} hosts and --nodes is {cluster.nodes}: a world of "
            f"{len(hosts)} × {cluster.gpus_per_node} GPUs is not the {cluster.world_size} the run is written for"
        )
    if len(set(hosts)) != len(hosts):
        raise LaunchUsageError(f"--hosts names a host twice: {', '.join(hosts)}")


def _accelerate_text(config: dict[str, Any], run: Run, scheduler: str) -> str:
    read = (
        "# Read on the first host, where `accelerate launch` hands the run to DeepSpeed's launcher and\n"
        "# its hostfile (README.md).\n"
        if scheduler == "deepspeed"
        else "# Every node reads it; the node's rank and the main process's address come from the scheduler\n"
        f"# on the `accelerate launch` command line ({schedulers.NODE_SCRIPT}).\n"
    )
    header = (
        f"# accelerate config of {run.recipe} on {run.cluster.nodes} nodes × {run.cluster.gpus_per_node} GPUs, "
        f"written by mft-recipes {__version__} `launch`.\n"
    )
    return header + read + yaml.safe_dump(config, sort_keys=False)


def _check_documents(files: dict[str, str], kinds: dict[str, str | None], cluster: Cluster) -> list[str]:
    """Each document of the bundle, read back from its text, validated as its kind for the world size."""
    problems = []
    for name, kind in kinds.items():
        if kind is None:
            continue
        document = yaml.safe_load(files[name])
        for problem in check_document(document, kind, file=name, gpus=cluster.world_size, gpu=cluster.gpu):
            if problem.is_error:
                problems.append(str(problem))
    return problems


def _check_scripts(scripts: dict[str, str]) -> list[str]:
    """`bash -n` on each script: bash parses it without running it."""
    bash = shutil.which("bash")
    if bash is None:
        return []
    problems = []
    for name, text in scripts.items():
        result = subprocess.run([bash, "-n"], input=text, capture_output=True, text=True, check=False)
        if result.returncode:
            problems.append(f"{name}: bash cannot parse it: {result.stderr.strip()}")
    return problems


def _check_hostfile(text: str, cluster: Cluster) -> list[str]:
    """The hostfile as DeepSpeed's launcher reads it: a host per node, each with the node's GPUs."""
    try:
        pool = parse_hostfile(text)
    except HostfileError as error:
        return [f"{HOSTFILE}: {error}"]
    if len(pool) != cluster.nodes or set(pool.values()) != {cluster.gpus_per_node}:
        return [
            f"{HOSTFILE}: {len(pool)} hosts with {sorted(set(pool.values()))} slots, not {cluster.nodes} with "
            f"{cluster.gpus_per_node}"
        ]
    return []


def _check_shared(placements: list[tuple[SharedPath, Placement]], warnings: list[str]) -> list[str]:
    """A path every node needs that is on one machine's own disk, or data that is not there at all."""
    problems = []
    for shared, placement in placements:
        written = (
            shared.path
            if Path(shared.path) == placement.resolved
            else f"{shared.path} ({placement.resolved})"
        )
        if shared.must_exist and not placement.resolved.exists():
            problems.append(f"{shared.key}: {written} does not exist; {shared.why}")
        elif placement.verdict == "local":
            problems.append(
                f"{shared.key}: {written} is on this machine's own disk ({placement.describe()}), which the other "
                f"nodes do not see: {shared.why}"
            )
        elif placement.verdict == "unknown":
            warnings.append(
                f"{shared.key}: cannot tell whether every node sees {written} ({placement.describe()}): "
                f"{shared.why} (--shared FOLDER declares a folder every node mounts)"
            )
    return problems


def _shared_json(shared: SharedPath, placement: Placement) -> dict[str, Any]:
    mount = placement.mount
    return {
        "key": shared.key,
        "path": shared.path,
        "resolved": str(placement.resolved),
        "filesystem": None if mount is None else mount.fstype,
        "shared": placement.verdict,
        "declared_by": None if placement.declared is None else str(placement.declared),
    }


def _plan(
    rendered: RenderedDocument, cluster: Cluster, architectures: Architectures, warnings: list[str]
) -> dict[str, Any] | None:
    """The plan of the run on the bundle's cluster, in short; a plan that does not fit is a warning (the
    plan is a model; the run is the user's to try)."""
    from mft_recipes_plan.plan import PlanError, PlanOptions, plan_rendered

    options = PlanOptions(gpu=cluster.gpu, nodes=cluster.nodes, gpus_per_node=cluster.gpus_per_node)
    if rendered.parameters.get("device") == "cpu":
        options = PlanOptions(nodes=cluster.nodes, gpus_per_node=cluster.gpus_per_node)
    try:
        plan = plan_rendered(rendered, options, architectures)
    except (PlanError, ValueError) as error:
        warnings.append(f"plan: cannot plan this run: {error}")
        return None
    if shortfall := plan.shortfall():
        warnings.append(f"plan: {shortfall}")
    data = plan.as_json()
    return {
        key: data[key]
        for key in ("memory_per_gpu_gib", "fits", "headroom_gib", "nodes_needed", "communication")
    }


def folder_problem(folder: Path) -> str | None:
    """Why `-o FOLDER` cannot take the bundle, found before any work: a file, a folder of other things
    (launch replaces only a bundle it wrote), or a parent that cannot be written."""
    if folder.exists() and not folder.is_dir():
        return "it is a file"
    if folder.is_dir() and any(folder.iterdir()) and not (folder / MANIFEST).is_file():
        return f"it holds other files; launch writes a new folder or replaces a bundle it wrote ({MANIFEST})"
    from mft_recipes import why_unwritable

    return why_unwritable(folder.with_name(f".{folder.name}.new"))


def write_bundle(bundle: Bundle, folder: Path) -> None:
    """Write the bundle's files into a new folder beside `folder`, then rename it into place (replacing a
    bundle there): the folder appears whole, or stays as it was."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    umask = _umask()
    staging = folder.with_name(f".{folder.name}.{os.urandom(4).hex()}.new")
    staging.mkdir(mode=0o777 & ~umask)
    try:
        for name, text in {**bundle.files, MANIFEST: json.dumps(bundle.manifest(), indent=2) + "\n"}.items():
            path = staging / name
            path.write_text(text, encoding="utf-8")
            path.chmod((0o777 if name in bundle.scripts else 0o666) & ~umask)
        if folder.exists():
            old = folder.with_name(f".{folder.name}.{os.urandom(4).hex()}.old")
            folder.rename(old)
            try:
                staging.rename(folder)
            except BaseException:
                old.rename(folder)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(folder)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(staging)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
