"""Built-in plugin: `mft-recipes launch`, the files that start a recipe's run on several nodes (a Slurm
batch script, a script per node for torchrun, or a DeepSpeed hostfile), around the training files and
command the recipe's target gives (`Target.cluster_launch`); and the accelerate config as a document kind that
`validate` knows (docs/multinode.md).

Nothing heavy is imported: the command checks and writes text files.
"""

from __future__ import annotations

from typing import Any

from mft_recipes import DocumentKind, Validator, hookimpl


@hookimpl
def register_document_kinds(register: Any) -> None:
    from mft_recipes_launch.accelerate import KIND, SCHEMA, is_accelerate_config

    register(
        DocumentKind(
            KIND, SCHEMA, is_accelerate_config, "an accelerate config (accelerate launch --config_file)"
        )
    )


@hookimpl
def register_validators(register: Any) -> None:
    from mft_recipes_launch.accelerate import KIND, check_hostfile_launcher, check_processes

    register(Validator("accelerate-world-size", (KIND,), check_processes, check_processes.__doc__ or ""))
    register(
        Validator(
            "accelerate-hostfile", (KIND,), check_hostfile_launcher, check_hostfile_launcher.__doc__ or ""
        )
    )


@hookimpl
def register_commands(cli: Any) -> None:
    from mft_recipes_launch.command import launch_command

    cli.add_command(launch_command)
