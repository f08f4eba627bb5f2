"""Built-in La Plateforme support: the `la-plateforme` target and the job payload kind."""

from __future__ import annotations

from typing import Any

from mft_recipes.documents import DocumentKind
from mft_recipes.hookspecs import hookimpl
from mft_recipes.render import Target


def is_platform_job(document: Any) -> bool:
    return isinstance(document, dict) and "model" in document and "hyperparameters" in document


@hookimpl
def register_document_kinds(register: Any) -> None:
    register(DocumentKind("la-plateforme-job", "la-plateforme-job", is_platform_job,
                          "a La Plateforme fine-tuning job-create body (JSON)"))


@hookimpl
def register_targets(register: Any) -> None:
    register(Target("la-plateforme", kind="la-plateforme-job", format="json",
                    description="a La Plateforme fine-tuning job payload"))
