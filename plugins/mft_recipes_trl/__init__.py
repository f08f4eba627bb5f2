"""Built-in TRL support: the `trl` target, which renders the axolotl recipes that list it as a config
`trl sft --config FILE` runs (translate.py), with the accelerate config of a DeepSpeed recipe beside it
(accelerate.py); the `trl` document kind, validated against a schema generated from the pinned TRL's own
dataclasses (schemas/trl.schema.json) and by the checks in validators.py; `validate --deep` with TRL's
own parser (deep.py); and `mft-recipes trl tokenize`, which writes the training data in Mistral's exact
chat format (tokenize.py, docs/trl.md).

Nothing here imports TRL: rendering and validation stay fast and work without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from mft_recipes import DocumentKind, RenderContext, RenderedDocument, Target, hookimpl

KIND = "trl"
# What tells a TRL config from the other kinds: ModelConfig's model, which axolotl calls base_model.
MODEL_KEY = "model_name_or_path"


def is_trl_config(document: Any) -> bool:
    return isinstance(document, dict) and MODEL_KEY in document and "base_model" not in document


def companions(document: dict[str, Any], context: RenderContext) -> dict[str, dict[str, Any]]:
    """The accelerate config of a recipe whose axolotl document carries a DeepSpeed section."""
    from mft_recipes_trl.accelerate import accelerate_config

    section = document.get("deepspeed")
    if not isinstance(section, dict):
        return {}
    return {
        "accelerate": accelerate_config(
            section, max(context.recipe.hardware.gpus, 1), bf16=document.get("bf16") is not False
        )
    }


def launch(rendered: RenderedDocument, paths: Mapping[str, str]) -> str:
    """`trl sft --config FILE`, or for a DeepSpeed recipe `accelerate launch` with its accelerate config."""
    config = paths.get("", f"{rendered.recipe.name}.trl.yaml")
    if "accelerate" not in rendered.companions:
        return f"trl sft --config {config}"
    accelerate = paths.get("accelerate", f"{rendered.recipe.name}.trl.accelerate.yaml")
    return f"accelerate launch --config_file {accelerate} -m trl.scripts.sft --config {config}"


@hookimpl
def register_document_kinds(register: Any) -> None:
    register(DocumentKind(KIND, KIND, is_trl_config, "a TRL config (`trl sft --config FILE`)"))


@hookimpl
def register_targets(register: Any) -> None:
    from mft_recipes_trl.translate import translate

    register(
        Target(
            KIND,
            kind=KIND,
            format="yaml",
            description="a `trl sft --config` YAML (script, SFTConfig, ModelConfig), translated from an "
            "axolotl recipe; the accelerate config beside it for DeepSpeed",
            translates=("axolotl",),
            translate=translate,
            companions=companions,
            launch=launch,
        )
    )


@hookimpl
def register_validators(register: Any) -> None:
    from mft_recipes_trl.deep import DEEP_VALIDATOR, INSTALL_HINT
    from mft_recipes_trl.validators import VALIDATORS

    for validator in VALIDATORS:
        register(validator)
    register(replace(DEEP_VALIDATOR, requires=("trl",), install=INSTALL_HINT))


@hookimpl
def register_commands(cli: Any) -> None:
    from mft_recipes_trl.tokenize import trl_group

    cli.add_command(trl_group)
