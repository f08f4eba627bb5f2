"""Values for a recipe's required parameters, so that every recipe can be rendered without knowing it.

Used by the host tests and by benchmarks/render_validate.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mft_recipes.recipes import Recipe

SAMPLE_DATA = Path(__file__).resolve().parents[2] / "examples" / "data" / "train.jsonl"


def sample_value(name: str, schema: dict[str, Any]) -> Any:
    """A value for a required parameter, built from its schema (the sample data for `dataset`)."""
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "array":
        return [f"{name}-{index}" for index in range(1, max(2, schema.get("minItems", 1)) + 1)]
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return True
    return str(SAMPLE_DATA) if name == "dataset" else f"{name}-0001"


def override_word(name: str, value: Any) -> str:
    """`name=value` as a user types it: strings as they are, anything else in YAML flow (JSON) form."""
    return f"{name}={value if isinstance(value, str) else json.dumps(value)}"


def required_overrides(parameters: dict[str, dict[str, Any]]) -> list[str]:
    """`key=value` words for the required parameters of a recipe file's `parameters` mapping."""
    words = []
    for name, spec in parameters.items():
        if spec.get("required"):
            schema = {key: value for key, value in spec.items() if key not in ("help", "default", "required")}
            words.append(override_word(name, sample_value(name, schema)))
    return words


def recipe_overrides(recipe: Recipe) -> dict[str, Any]:
    """Values for the required parameters of a registered recipe."""
    return {name: sample_value(name, p.schema) for name, p in recipe.parameters.items() if p.required}
