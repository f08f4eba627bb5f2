"""Built-in axolotl support: the `axolotl` target, the axolotl and DeepSpeed document kinds, generators
(LoRA targets from the architecture, inline DeepSpeed sections, the chat format), the parameter set
`axolotl` that its recipes extend (parameter_sets/axolotl.yaml), validators for axolotl configs, and the dataset types that train Mistral's exact chat format (mistral_chat).

Nothing here imports axolotl: rendering and validation must stay fast and work without the trainer.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from mft_recipes import DocumentKind, Target, hookimpl
from mft_recipes_axolotl.deepspeed import SCHEMA as DEEPSPEED_SCHEMA
from mft_recipes_axolotl.deepspeed import is_deepspeed_config


def is_axolotl_config(document: Any) -> bool:
    return isinstance(document, dict) and "base_model" in document


@hookimpl
def register_document_kinds(register: Any) -> None:
    register(DocumentKind("axolotl", "axolotl", is_axolotl_config, "an axolotl training config (YAML)"))
    register(DocumentKind("deepspeed", DEEPSPEED_SCHEMA, is_deepspeed_config, "a DeepSpeed config (JSON)"))


@hookimpl
def register_parameter_sets(register: Any) -> None:
    for path in sorted((Path(__file__).parent / "parameter_sets").glob("*.yaml")):
        register(path)


@hookimpl
def register_targets(register: Any) -> None:
    from mft_recipes_axolotl.launch import axolotl_launch

    register(
        Target(
            "axolotl",
            kind="axolotl",
            format="yaml",
            description="one axolotl YAML, DeepSpeed inline",
            cluster_launch=axolotl_launch,
        )
    )


@hookimpl
def register_generators(register: Any) -> None:
    from mft_recipes_axolotl.chat_format import GENERATORS as CHAT_GENERATORS
    from mft_recipes_axolotl.generators import GENERATORS

    for generator in (*GENERATORS, *CHAT_GENERATORS):
        register(generator)


@hookimpl
def register_validators(register: Any) -> None:
    from mft_recipes_axolotl.chat_format import VALIDATORS as CHAT_VALIDATORS
    from mft_recipes_axolotl.deep import DEEP_VALIDATOR, INSTALL_HINT
    from mft_recipes_axolotl.validators import VALIDATORS

    for validator in (*VALIDATORS, *CHAT_VALIDATORS):
        register(validator)
    # Runs only with `validate --deep`: axolotl's own code on the config. Without axolotl the host
    # refuses --deep with the pip command (exit 2) before anything runs.
    register(replace(DEEP_VALIDATOR, requires=("axolotl",), install=INSTALL_HINT))


@hookimpl
def adjust_document(document: dict[str, Any], context: Any) -> None:
    from mft_recipes_axolotl.cpu import adjust_for_device

    adjust_for_device(document, context)
