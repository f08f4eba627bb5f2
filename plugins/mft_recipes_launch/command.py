"""`mft-recipes launch RECIPE [key=value ...] --scheduler slurm|torchrun|deepspeed -o DIR`: a launch bundle
for a run on several nodes (docs/multinode.md)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import click

from mft_recipes_launch.bundle import DEFAULT_PORT
from mft_recipes_launch.schedulers import SCHEDULERS

HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@click.command("launch", context_settings={"ignore_unknown_options": True})
@click.argument("recipe_name", metavar="RECIPE")
@click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")
@click.option(
    "--scheduler",
    type=click.Choice(SCHEDULERS),
    required=True,
    help="slurm: an sbatch script; torchrun: a script to run on each node; deepspeed: a hostfile and DeepSpeed's launcher.",
)
@click.option(
    "-o",
    "--output",
    "folder",
    type=click.Path(file_okay=False),
    required=True,
    help="The bundle's folder, on storage every node sees (a new one, or a bundle launch wrote, replaced).",
)
@click.option("--nodes", type=click.IntRange(min=1), help="Machines (default: the recipe's).")
@click.option(
    "--gpus-per-node", type=click.IntRange(min=1), help="GPUs on each machine (default: the recipe's)."
)
@click.option("--gpus", type=click.IntRange(min=1), help="GPUs in all, as `plan --gpus` reads it.")
@click.option(
    "--gpu", "gpu_name", metavar="NAME", help="The GPU, from the plan's table (default: the recipe's)."
)
@click.option(
    "--hosts", help="deepspeed: the hosts of the hostfile, comma-separated, the first starting the run."
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="The main process's port on the first node.",
)
@click.option(
    "--shared",
    multiple=True,
    type=click.Path(file_okay=False),
    help="A folder every node mounts at the same path (repeatable): paths under it count as shared.",
)
@click.option(
    "--sbatch-option",
    "sbatch_options",
    multiple=True,
    metavar="OPTION",
    help="slurm: an extra `#SBATCH OPTION` line, e.g. --sbatch-option=--partition=gpu (repeatable).",
)
@click.option(
    "--setup",
    multiple=True,
    metavar="COMMAND",
    help="A line every script runs first, e.g. --setup 'source /shared/venv/bin/activate' (repeatable).",
)
@click.option(
    "--target",
    "target_name",
    metavar="NAME",
    help="Launch the recipe as rendered for this target (default: its own; `render --target`).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the bundle as JSON (schemas/launch-bundle.schema.json)."
)
def launch_command(
    recipe_name: str,
    overrides: tuple[str, ...],
    scheduler: str,
    folder: str,
    gpu_name: str | None,
    hosts: str | None,
    port: int,
    shared: tuple[str, ...],
    sbatch_options: tuple[str, ...],
    setup: tuple[str, ...],
    target_name: str | None,
    as_json: bool,
    **hardware: Any,
) -> None:
    """Write a launch bundle for RECIPE on several nodes: the training config, the accelerate config, the
    scheduler's scripts (or a DeepSpeed hostfile), a README of the exact commands; every file validated,
    the folder written whole or not at all.

    \b
    mft-recipes launch mixtral-8x22b-full dataset=/shared/train.jsonl --scheduler slurm -o /shared/run
    mft-recipes launch mixtral-8x22b dataset=/shared/train.jsonl --gpu a100-40gb --nodes 2 \\
        --gpus-per-node 8 --scheduler torchrun -o /shared/run
    mft-recipes launch mistral-7b-full dataset=/nfs/train.jsonl --nodes 2 --scheduler deepspeed \\
        --hosts gpu01,gpu02 -o /nfs/run
    mft-recipes launch mistral-7b-full dataset=/shared/train.jsonl --target trl --scheduler slurm -o /shared/run
    """
    from mft_recipes_plan.plan import PlanError, PlanOptions, cluster_of

    from mft_recipes import (
        EXIT_INVALID,
        Cluster,
        ParameterError,
        RenderError,
        fail,
        get_architectures,
        parse_overrides,
        plural,
        print_json,
        recipe_or_fail,
        render_document,
        why_write_failed,
    )
    from mft_recipes_launch.bundle import (
        LaunchOptions,
        LaunchRefused,
        LaunchUsageError,
        build_bundle,
        folder_problem,
        write_bundle,
    )

    target = Path(os.path.abspath(folder))
    if reason := folder_problem(target):
        fail(f"-o {folder}: cannot write the bundle there: {reason}")
    host_names = tuple(host.strip() for host in hosts.split(",")) if hosts else ()
    if bad := [host for host in host_names if not HOST.fullmatch(host)]:
        fail(f"--hosts: {', '.join(map(repr, bad))} is not a host name or address")
    recipe = recipe_or_fail(recipe_name)
    if not recipe.hardware.gpus:
        fail(f"recipe {recipe.name} trains on {recipe.hardware.gpu} hardware: there is nothing to launch")
    try:
        nodes, per_node = cluster_of(recipe.hardware, PlanOptions(**hardware))
    except PlanError as error:
        fail(str(error))
    cluster = Cluster(nodes, per_node, gpu_name or recipe.hardware.gpu)
    try:
        rendered = render_document(recipe, parse_overrides(overrides), target=target_name)
    except (ParameterError, RenderError) as error:
        fail(str(error))
    launch = LaunchOptions(
        scheduler=scheduler,
        hosts=host_names,
        port=port,
        shared=tuple(Path(os.path.abspath(path)) for path in shared),
        sbatch_options=sbatch_options,
        setup=setup,
    )
    try:
        bundle = build_bundle(rendered, cluster, target, Path(os.getcwd()), launch, get_architectures())
    except LaunchUsageError as error:
        fail(str(error))
    except LaunchRefused as refused:
        for problem in refused.problems:
            click.echo(f"mft-recipes: error: {problem}", err=True)
        local = (
            " Put each such path on storage every node mounts at the same path (NFS, Lustre, ...), or, if its folder is, say so with --shared FOLDER."
            if any("own disk" in problem for problem in refused.problems)
            else ""
        )
        fail(
            f"the bundle would break on {cluster.nodes} nodes ({plural(len(refused.problems), 'problem')}); nothing written.{local}",
            EXIT_INVALID,
        )
    try:
        write_bundle(bundle, target)
    except OSError as error:
        fail(f"-o {folder}: {why_write_failed(target, error)}")
    for warning in bundle.warnings:
        click.echo(f"mft-recipes: warning: {warning}", err=True)
    if as_json:
        print_json(bundle.manifest())
        return
    click.echo(f"wrote {target}: {', '.join(sorted(bundle.files))}, bundle.json")
    for number, step in enumerate(bundle.steps, 1):
        click.echo(f"{number}. on {step.where}: {step.command}")
