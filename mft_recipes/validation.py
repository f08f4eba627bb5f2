"""Validating a document: its kind's JSON Schema first, then every validator plugins add for that kind."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mft_recipes.architectures import Architectures
from mft_recipes.documents import LoadedDocument
from mft_recipes.problems import KeyPath, Problem
from mft_recipes.schemas import check_against_schema

if TYPE_CHECKING:
    from mft_recipes.host import Registry


@dataclass(frozen=True)
class ValidationContext:
    """What a validator may need besides the document: its kind, the registered architectures (which one
    a `base_model` names: `context.architectures.find(base_model)`), its file, the number and model of the
    GPUs it will run on when known (a recipe's hardware, `validate --gpus`, `--gpu`), and the directory
    the trainer will be launched from, which relative paths in the document resolve against (`validate
    --cwd`; None: this process's working directory)."""

    kind: str
    architectures: Architectures
    file: str | None = None
    gpus: int | None = None
    gpu: str | None = None
    cwd: str | None = None


@dataclass(frozen=True)
class Validator:
    """A check beyond the schema. `check(document, context)` yields Problems; `kinds` it applies to."""

    name: str
    kinds: tuple[str, ...]
    check: Callable[[Any, ValidationContext], Iterable[Problem]]
    description: str = ""
    # A deep check runs the real trainer or model code (heavy extras, seconds to minutes): only on request.
    deep: bool = False
    # Modules a deep check imports and the command that installs them: without one of them, a deep
    # validation of a document of its kinds raises MissingExtraError (a usage error, exit 2) before any
    # validator runs.
    requires: tuple[str, ...] = ()
    install: str = ""


class MissingExtraError(Exception):
    """A deep validator needs modules that are not installed; the message names them and the pip command
    that installs them."""


class UnknownKindError(Exception):
    """No registered kind recognises the document; the message lists the kinds."""


def detect_kind(document: Any, registry: Registry) -> str:
    """The name of the first registered kind whose `detect` accepts the document."""
    for kind in registry.kinds.values():
        try:
            if kind.detect(document):
                return kind.name
        except Exception:  # a broken detector must not stop detection by the others
            continue
    names = ", ".join(registry.kinds) or "none"
    raise UnknownKindError(f"cannot tell what kind of document this is; pass --kind (one of: {names})")


def validate_document(
    document: Any,
    kind: str,
    registry: Registry,
    *,
    file: str | None = None,
    lines: dict[KeyPath, int] | None = None,
    gpus: int | None = None,
    deep: bool = False,
    gpu: str | None = None,
    cwd: str | None = None,
) -> list[Problem]:
    """All problems of a document of `kind`: schema problems, then each validator's (the deep ones too
    when `deep`), with lines."""
    validators = [
        validator
        for validator in registry.validators
        if kind in validator.kinds and (deep or not validator.deep)
    ]
    for validator in validators:
        if validator.deep:
            _require(validator)
    problems = check_against_schema(document, registry.kinds[kind].schema)
    schema_broken = any(problem.is_error for problem in problems)
    context = ValidationContext(kind, registry.architecture_view, file=file, gpus=gpus, gpu=gpu, cwd=cwd)
    for validator in validators:
        found = _run_validator(validator, document, context)
        if schema_broken:
            # A validator that trips over a shape the schema already refused adds only noise.
            found = [problem for problem in found if problem.code != "validator-crashed"]
        problems.extend(found)
    return [problem.located(file, lines) for problem in problems]


def validate_loaded(
    loaded: LoadedDocument,
    registry: Registry,
    kind: str | None = None,
    gpus: int | None = None,
    deep: bool = False,
    gpu: str | None = None,
    cwd: str | None = None,
) -> list[Problem]:
    """Validate a document read from a file, telling its kind when none is given."""
    kind = kind or detect_kind(loaded.data, registry)
    return validate_document(
        loaded.data,
        kind,
        registry,
        file=loaded.file,
        lines=loaded.lines,
        gpus=gpus,
        deep=deep,
        gpu=gpu,
        cwd=cwd,
    )


def _require(validator: Validator) -> None:
    """MissingExtraError when a module the validator imports is not installed."""
    from importlib.util import find_spec

    missing = [module for module in validator.requires if find_spec(module) is None]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise MissingExtraError(
            f"--deep runs {validator.description or validator.name}, which needs {', '.join(missing)}; "
            f"it {verb} not installed: {validator.install}"
        )


def _run_validator(validator: Validator, document: Any, context: ValidationContext) -> list[Problem]:
    try:
        return [
            problem if problem.source != "schema" else _with_source(problem, validator.name)
            for problem in validator.check(document, context)
        ]
    except Exception as error:  # one broken validator is reported, the others still run
        message = f"validator {validator.name!r} crashed: {type(error).__name__}: {error}"
        return [Problem(message, (), code="validator-crashed", source=validator.name)]


def _with_source(problem: Problem, source: str) -> Problem:
    from dataclasses import replace

    return replace(problem, source=source)
