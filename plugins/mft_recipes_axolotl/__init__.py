"""Built-in axolotl support: the `axolotl` target and kind, generators, and validators for axolotl configs."""

from __future__ import annotations

from typing import Any

from mft_recipes.documents import DocumentKind
from mft_recipes.hookspecs import hookimpl
from mft_recipes.render import Target


def is_axolotl_config(document: Any) -> bool:
    return isinstance(document, dict) and "base_model" in document


@hookimpl
def register_document_kinds(register: Any) -> None:
    register(DocumentKind("axolotl", "axolotl", is_axolotl_config, "an axolotl training config (YAML)"))


@hookimpl
def register_targets(register: Any) -> None:
    register(Target("axolotl", kind="axolotl", format="yaml", description="one axolotl YAML, DeepSpeed inline"))


@hookimpl
def register_generators(register: Any) -> None:
    from mft_recipes_axolotl.generators import GENERATORS

    for generator in GENERATORS:
        register(generator)
