"""`validate --deep` for TRL configs: TRL's own parser, as `trl sft --config FILE` runs it.

`trl sft` parses the config with TrlParser over its four dataclasses (trl/scripts/sft.py, `make_parser`):
each key becomes the default of its argument, the dataclasses' `__post_init__` checks the values, and
the keys no dataclass has are handed to `accelerate launch`, which stops at any it does not know
(trl/cli/commands/training.py). This check runs the same parser and reports both, then builds the LoRA
and 4-bit configs as the script does (`get_peft_config`, `get_quantization_config`), so peft's own
checks run too.

TrainingArguments checks bf16 and tf32 against this machine's GPU; on a machine without CUDA they are
overridden to false on the parser's command line (as a flag given to `trl sft` would be), and a note
says so. Left out of the parse: the config's `env` mapping (TrlParser would set it in this process's
environment) and `ddp_backend` (TrainingArguments would join a process group, which only a launch of
several ranks has); the schema checks both.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import Any

from mft_recipes import Problem, ValidationContext, Validator

INSTALL_HINT = "pip install 'trl==1.16.0' 'peft==0.21.2' (the versions the trl tier proves)"
HARDWARE_KEYS = ("bf16", "tf32")
NOT_PARSED = ("env", "ddp_backend")


def parse(document: dict[str, Any], overrides: list[str]) -> tuple[tuple[Any, ...], list[str]]:
    """TRL's parse of `document` (without NOT_PARSED) with command-line `overrides`: the four dataclasses
    and the keys none of them has, as `--key value` strings."""
    import yaml
    from trl.scripts.sft import make_parser

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "config.yaml")
        with open(path, "w", encoding="utf-8") as file:
            yaml.safe_dump({key: value for key, value in document.items() if key not in NOT_PARSED}, file)
        *parsed, unknown, _ = make_parser().parse_args_and_config(
            ["--config", path, *overrides], return_remaining_strings=True, separate_remaining_strings=True
        )
    return tuple(parsed), unknown


def check_with_trl(document: dict[str, Any], context: ValidationContext) -> Iterator[Problem]:
    import torch

    overrides: list[str] = []
    if not torch.cuda.is_available():
        present = [key for key in HARDWARE_KEYS if document.get(key)]
        for key in present:
            overrides += [f"--{key}", "false"]
        if present:
            yield Problem(
                f"{', '.join(present)}: TrainingArguments checks them against the GPU, and this machine has no "
                "CUDA: parsed as false here, unchecked",
                code="trl-deep-no-gpu",
                severity="warning",
            )
    try:
        (_script, _training, model, _data), unknown = parse(document, overrides)
    except (ValueError, TypeError) as error:
        yield Problem(f"TRL's parser refuses this config: {error}", code="trl-parser")
        return
    for key in unknown[::2]:
        name = key.removeprefix("--")
        yield Problem(
            f"TRL's parser does not know {name!r}: no dataclass of `trl sft` has it, and accelerate launch "
            "refuses it (`trl sft` hands it over) or `accelerate launch -m trl.scripts.sft` ignores it",
            (name,),
            code="trl-unknown-key",
        )
    from trl import get_peft_config, get_quantization_config

    for build in (get_peft_config, get_quantization_config):
        try:
            build(model)
        except (ValueError, TypeError, ImportError) as error:
            yield Problem(f"TRL's {build.__name__} refuses this config: {error}", code="trl-parser")


DEEP_VALIDATOR = Validator(
    name="trl-deep",
    kinds=("trl",),
    check=check_with_trl,
    description="TRL's own parser (trl sft's dataclasses, peft's LoraConfig, bitsandbytes' config)",
    deep=True,
)
