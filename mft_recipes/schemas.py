"""The JSON Schemas in schemas/ and validation against them, with problems that name the key path."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from mft_recipes.problems import Problem
from mft_recipes.resources import packaged_dir

# The `$id` of every schema in schemas/ is this followed by its file name.
SCHEMA_BASE = "https://github.com/mft-recipes/mft-recipes/schemas/"


def schema_path(name: str) -> Path:
    """`recipe` → the path of schemas/recipe.schema.json."""
    return packaged_dir("schemas") / f"{name}.schema.json"


@cache
def load_schema(name_or_path: str | Path) -> dict[str, Any]:
    """A schema by its name in schemas/ or by its path (plugins ship their own)."""
    path = Path(name_or_path) if isinstance(name_or_path, Path) else schema_path(name_or_path)
    with path.open(encoding="utf-8") as file:
        schema: dict[str, Any] = json.load(file)
    return schema


def _validator(schema: dict[str, Any]) -> Any:
    import jsonschema  # imported here: `--help` and `list` need no schema validation
    from referencing import Registry

    cls = jsonschema.validators.validator_for(schema)
    # referencing's documented `Registry(retrieve=...)`; mypy's attrs plugin misses the field's alias.
    registry = Registry(retrieve=_retrieve)  # type: ignore[call-arg]
    return cls(schema, format_checker=cls.FORMAT_CHECKER, registry=registry)


def _retrieve(uri: str) -> Any:
    """A schema of schemas/ named by another one's `$ref` (parameter-set.schema.json uses recipe.schema.json's
    parameter), found by its file name: a `$ref` reads no network."""
    from referencing import Resource
    from referencing.exceptions import NoSuchResource

    name = uri.rsplit("/", 1)[-1].removesuffix(".schema.json")
    if not uri.startswith(SCHEMA_BASE) or not schema_path(name).is_file():
        raise NoSuchResource(uri)
    return Resource.from_contents(load_schema(name))


def check_against_schema(document: Any, schema: str | Path | dict[str, Any]) -> list[Problem]:
    """Every place where `document` breaks the schema, as problems that name the key path (see
    schema_errors: what was expected, never the whole value)."""
    from mft_recipes.schema_errors import problems_of

    loaded = schema if isinstance(schema, dict) else load_schema(schema)
    validator = _validator(loaded)
    problems: dict[tuple[Any, ...], Problem] = {}
    for error in validator.iter_errors(document):
        for problem in problems_of(error, validator):
            problems.setdefault((problem.path, problem.code, problem.message), problem)
    return sorted(problems.values(), key=lambda problem: list(map(str, problem.path)))
