"""Relative paths in an axolotl config, resolved as axolotl resolves them: against the directory it is
launched from, not the folder of the config file.

axolotl reads a `deepspeed:` file with `os.path.exists(cfg.deepspeed)` (normalize_config in
axolotl/utils/config/__init__.py), a dataset with `Path(dataset_config.path).exists()` (else it is a hub
dataset id; axolotl/utils/data/shared.py), and transformers loads `base_model` from a local folder when one
exists at that path (else from the hub): all relative to the process's working directory. `validate --cwd`
names that directory when it is not the one `validate` runs in.
"""

from __future__ import annotations

import os
from pathlib import Path

from mft_recipes import ValidationContext


def launch_dir(context: ValidationContext) -> Path:
    """The directory the trainer will be launched from."""
    return Path(context.cwd or os.getcwd())


def launch_path(value: str, context: ValidationContext) -> Path:
    """Where axolotl will look for a path written in the config."""
    path = Path(value)
    return path if path.is_absolute() else launch_dir(context) / path


def beside_config(value: str, context: ValidationContext) -> Path | None:
    """The file or folder a relative path names next to the config, when it exists there but not in the
    launch directory: the config was written for a launch from its own folder."""
    if Path(value).is_absolute() or not context.file or context.file == "<stdin>":
        return None
    candidate = Path(context.file).parent / value
    if candidate.exists() and not launch_path(value, context).exists():
        return candidate
    return None


def relative_path_hint(value: str, context: ValidationContext) -> str:
    """A sentence for a path that axolotl will not find from the launch directory: where it is instead."""
    found = beside_config(value, context)
    if found is None:
        return f"it is not in the launch directory {launch_dir(context)}"
    folder = Path(context.file or ".").parent
    return (
        f"it is next to the config ({found}) but not in the launch directory {launch_dir(context)}: axolotl "
        f"resolves it against the directory it is launched from. Launch from {folder} (and check with "
        f"`validate --cwd {folder}`), or write the path relative to where you launch"
    )
