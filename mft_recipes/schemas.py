"""The JSON Schemas in schemas/ and validation against them, with problems that name the key path."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from mft_recipes.problems import Problem
from mft_recipes.resources import packaged_dir


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

    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


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
