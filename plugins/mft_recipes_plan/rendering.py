"""Rendering a recipe for its plan, before the user has data: required parameters that cannot change
the plan (a dataset path, an uploaded file id, label names) get placeholders."""

from __future__ import annotations

from typing import Any

from mft_recipes.recipes import Recipe, RecipeParameter
from mft_recipes.render import RenderedDocument, render_recipe


def render_for_plan(recipe: Recipe, overrides: dict[str, Any], registry: Any) -> RenderedDocument:
    """`render_recipe` with a placeholder for every required parameter the overrides leave out."""
    filled = dict(overrides)
    for parameter in recipe.parameters.values():
        if parameter.required and parameter.name not in filled:
            filled[parameter.name] = placeholder(parameter)
    rendered = render_recipe(recipe, filled, registry)
    rendered.overrides = dict(overrides)
    return rendered


def placeholder(parameter: RecipeParameter) -> Any:
    """A value of the parameter's type that satisfies its schema's simple bounds."""
    schema = parameter.schema
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    if "enum" in schema:
        return schema["enum"][0]
    if "integer" in kinds or "number" in kinds:
        return schema.get("minimum", 1)
    if "boolean" in kinds:
        return False
    if "array" in kinds:
        return [f"<{parameter.name}-{index}>" for index in range(max(int(schema.get("minItems", 1)), 1))]
    return f"<{parameter.name}>"
