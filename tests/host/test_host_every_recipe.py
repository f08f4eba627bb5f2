"""Every registered recipe renders with its required parameters alone and what it emits validates.

Parametrized over the registry, so a recipe added by anyone (a recipes/ file, a built-in plugin, or an
installed third-party plugin) is covered without touching this file.
"""

from __future__ import annotations

import json

import pytest
import yaml

from mft_recipes.host import get_registry
from mft_recipes.recipes import Recipe
from mft_recipes.render import emit, render_recipe
from mft_recipes.validation import validate_document

from .conftest import checkout_recipes
from .samples import recipe_overrides

REGISTRY = get_registry()


def test_the_builtin_plugins_load_without_an_error() -> None:
    assert REGISTRY.errors == []
    assert set(REGISTRY.recipes) >= set(checkout_recipes())


@pytest.mark.parametrize("recipe", list(REGISTRY.recipes.values()), ids=list(REGISTRY.recipes))
def test_renders_with_required_parameters_and_validates(recipe: Recipe) -> None:
    overrides = recipe_overrides(recipe)
    rendered = render_recipe(recipe, overrides, REGISTRY)
    assert rendered.errors == [], "\n".join(map(str, rendered.errors))
    for name, parameter in recipe.parameters.items():
        expected = overrides[name] if parameter.required else parameter.default
        assert rendered.parameters[name] == expected

    text = emit(rendered)
    parsed = json.loads(text) if rendered.target.format == "json" else yaml.safe_load(text)
    assert parsed == rendered.document, "what is printed must be the document that was validated"
    problems = validate_document(parsed, rendered.target.kind, REGISTRY)
    assert [p for p in problems if p.is_error] == []
