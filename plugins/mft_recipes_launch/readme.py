"""The README of a launch bundle: what it is for, the exact commands in order, what each file is, the
plan on this cluster, and where the shared paths are."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mft_recipes import __version__
from mft_recipes_launch.schedulers import (
    ACCELERATE_CONFIG,
    HOSTFILE,
    LAUNCH_SCRIPT,
    NODE_SCRIPT,
    SBATCH_SCRIPT,
    node_options,
    shell_words,
)

if TYPE_CHECKING:
    from mft_recipes_launch.bundle import Bundle

ROLES = {
    ACCELERATE_CONFIG: "the accelerate config every node reads: machines, processes in all, the rendezvous on "
    "the first node, DeepSpeed's launcher; validated against accelerate's schema and the world size",
    SBATCH_SCRIPT: "the Slurm batch script: the nodes, one task each, the first node as the main process, "
    "{prepared}node.sh on every node (passes `bash -n` and shellcheck)",
    NODE_SCRIPT: "one node's part: `accelerate launch` with this node's rank and the main process's address",
    LAUNCH_SCRIPT: "the whole run, started once on the first host: DeepSpeed's launcher reaches the others",
    HOSTFILE: "DeepSpeed's hostfile, `HOST slots=GPUs` per node, read as DeepSpeed's launcher reads it",
    "bundle.json": "what this README says, as JSON (schemas/launch-bundle.schema.json)",
}


def readme(bundle: Bundle) -> str:
    run, cluster = bundle.run, bundle.run.cluster
    lines = [
        f"# {run.recipe} on {cluster.nodes} nodes × {cluster.gpus_per_node} GPUs ({cluster.gpu})",
        "",
        f"Written by mft-recipes {__version__} `launch --scheduler {bundle.scheduler}` for target {bundle.target}: "
        f"{cluster.world_size} processes, one per GPU, over which DeepSpeed ZeRO-3 shards the model when the "
        "config has a ZeRO-3 section. Every file was validated before the folder was written. Every node must "
        f"see this folder at {run.folder} and start in {run.launch_dir}.",
        "",
        "## Run it",
        "",
    ]
    for number, step in enumerate(bundle.steps, 1):
        lines += [f"{number}. On {step.where}:", "", f"       {step.command}", ""]
    lines += _what_runs(bundle)
    lines += ["## Files", "", "| file | what it is |", "|---|---|"]
    for name in sorted([*bundle.files, "bundle.json"]):
        role = ROLES.get(
            name, f"the training config ({bundle.target}), validated for {cluster.world_size} GPUs"
        )
        prepared = "the data prepared once, then " if run.prepare() else ""
        lines.append(f"| `{name}` | {role.format(prepared=prepared)} |")
    lines += [
        "",
        *_plan(bundle),
        "## Shared storage",
        "",
        "| key | path | filesystem | every node sees it |",
        "|---|---|---|---|",
    ]
    for shared in bundle.shared:
        seen = {"shared": "yes", "unknown": "cannot tell"}.get(shared["shared"], shared["shared"])
        if shared["declared_by"]:
            seen = f"yes (--shared {shared['declared_by']})"
        lines.append(
            f"| {shared['key']} | `{shared['resolved']}` | {shared['filesystem'] or 'unknown'} | {seen} |"
        )
    if bundle.warnings:
        lines += ["", "## Warnings", "", *(f"- {warning}" for warning in bundle.warnings)]
    return "\n".join(lines) + "\n"


def _what_runs(bundle: Bundle) -> list[str]:
    run = bundle.run
    if bundle.scheduler == "deepspeed":
        command = shell_words(run.training.command(["--config_file", str(run.folder / ACCELERATE_CONFIG)]))
        return [
            "## What runs",
            "",
            f"`{LAUNCH_SCRIPT}` runs, from {run.launch_dir}:",
            "",
            f"    {command}",
            "",
            "accelerate hands it to DeepSpeed's launcher (`deepspeed --hostfile ... --launcher pdsh`), which "
            "starts every host's processes over ssh: the first host needs pdsh and passwordless ssh to the "
            "others, and every host the same Python environment at the same path. accelerate also appends "
            "the environment it passes on to `.deepspeed_env` in the launch folder.",
            "",
        ]
    command = shell_words(run.training.command(node_options(run.folder / ACCELERATE_CONFIG)))
    return [
        "## What runs",
        "",
        f"`{NODE_SCRIPT}` runs, on every node, from {run.launch_dir}:",
        "",
        f"    {command}",
        "",
        "with NODE_RANK (0 to "
        f"{run.cluster.nodes - 1}), MASTER_ADDR (node 0's address) and MASTER_PORT from the scheduler: "
        "accelerate starts torchrun's agent, which starts this node's ranks and meets the others at "
        "MASTER_ADDR:MASTER_PORT (a static rendezvous: the ranks are the nodes' own).",
        "",
    ]


def _plan(bundle: Bundle) -> list[str]:
    plan = bundle.plan
    if plan is None:
        return []
    lines = ["## The plan on this cluster", ""]
    if plan["memory_per_gpu_gib"] is not None:
        verdict = "fits" if plan["fits"] else "does NOT fit"
        lines.append(
            f"- memory per GPU: {plan['memory_per_gpu_gib']:.1f} GiB on {bundle.run.cluster.gpu}: {verdict} "
            f"(headroom {plan['headroom_gib']:.1f} GiB; fewest nodes that fit: {plan['nodes_needed']})"
        )
    traffic = plan["communication"]
    if traffic is not None:
        lines.append(
            f"- between nodes: {traffic['gb_per_gpu_per_step']:.1f} GB per GPU per step, "
            f"{traffic['seconds_per_step']:.2f} s at {traffic['interconnect_gbps']:g} Gb/s against "
            f"{traffic['compute_seconds_per_step']:.2f} s of compute: {traffic['bound']}-bound"
        )
    cluster = bundle.run.cluster
    lines += [
        f"- more: `mft-recipes plan {bundle.run.recipe} --gpu {cluster.gpu} --nodes {cluster.nodes} "
        f"--gpus-per-node {cluster.gpus_per_node}{bundle.target_option}` with the same overrides (config.yml's first lines list them)",
        "",
    ]
    return lines
