"""Built-in La Plateforme support: the `la-plateforme` target, its job payload kind, generators and
validators, and the `mft-recipes platform` commands (submit, status, list, start, cancel, models).

Mistral lists its fine-tuning API as deprecated and mistralai 2.5.2+ has no fine_tuning; the commands
use mistralai 2.0 to 2.5.1 (the `platform` extra pins 2.5.1), imported only when a command talks to
the server. See docs/platform.md.
"""

from __future__ import annotations

from typing import Any

from mft_recipes import DocumentKind, Target, hookimpl
from mft_recipes_platform.payload import GENERATORS, KIND, VALIDATORS


def is_platform_job(document: Any) -> bool:
    return isinstance(document, dict) and "model" in document and "hyperparameters" in document


@hookimpl
def register_document_kinds(register: Any) -> None:
    register(DocumentKind(KIND, KIND, is_platform_job, "a La Plateforme fine-tuning job-create body (JSON)"))


@hookimpl
def register_targets(register: Any) -> None:
    register(
        Target(
            "la-plateforme", kind=KIND, format="json", description="a La Plateforme fine-tuning job payload"
        )
    )


@hookimpl
def register_generators(register: Any) -> None:
    for generator in GENERATORS:
        register(generator)


@hookimpl
def register_validators(register: Any) -> None:
    for validator in VALIDATORS:
        register(validator)


@hookimpl
def register_commands(cli: Any) -> None:
    from mft_recipes_platform.commands import platform

    cli.add_command(platform)
