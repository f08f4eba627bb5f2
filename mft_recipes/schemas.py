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
    """Every place where `document` breaks the schema, as problems with key paths."""
    loaded = schema if isinstance(schema, dict) else load_schema(schema)
    problems = []
    for error in sorted(_validator(loaded).iter_errors(document), key=lambda e: list(map(str, e.path))):
        path = tuple(error.path)
        message = error.message
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = set(error.schema.get("properties", {}))
            unknown = sorted(set(error.instance) - allowed)
            for key in unknown:
                problems.append(Problem(_unknown_key_message(key, allowed), (*path, key), code="unknown-key"))
            continue
        if error.validator is None:
            # A `false` subschema: jsonschema's message would repeat the value, which may be a secret.
            problems.append(
                Problem("a value is given where none is allowed", path, code="schema-not-allowed")
            )
            continue
        problems.append(Problem(message, path, code=f"schema-{error.validator}"))
    return problems


def _unknown_key_message(key: str, allowed: set[str]) -> str:
    import difflib

    close = difflib.get_close_matches(key, sorted(allowed), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return f"unknown key {key!r}{hint}"
