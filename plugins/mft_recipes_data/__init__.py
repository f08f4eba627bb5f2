"""Built-in plugin: `mft-recipes data check|convert|split`, training data checked and counted before
anything trains (exact token counts with Mistral's own tokenizers from mistral-common).

Python API: `mft_recipes_data.check.check_files(paths, CheckOptions(recipe=..., role=...))` → CheckReport.
Nothing heavy is imported here: mistral-common loads only when a check runs.
"""

from __future__ import annotations

from typing import Any

from mft_recipes import hookimpl


@hookimpl
def register_commands(cli: Any) -> None:
    from mft_recipes_data.commands import data

    cli.add_command(data)
