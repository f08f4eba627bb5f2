"""The README's recipe catalogue is generated from the registered recipes and the committed one is current."""

from __future__ import annotations

from typing import Any

import pytest

from mft_recipes.hookspecs import hookimpl
from mft_recipes.host import build_registry, get_registry
from scripts.markers import replace_part
from scripts.update_readme import END, README, START, catalogue_table, main

from .conftest import EXAMPLE_PLUGIN, checkout_recipes


def test_the_committed_readme_catalogue_is_current() -> None:
    assert main(["--check"]) == 0, "run `python scripts/update_readme.py` and commit README.md"


def test_the_catalogue_has_a_row_per_recipe_file() -> None:
    readme = README.read_text(encoding="utf-8")
    block = readme[readme.index(START) : readme.index(END)]
    rows = [line for line in block.splitlines() if line.startswith("| `")]
    recipes = checkout_recipes()
    assert len(rows) == len(recipes)
    for row, (name, recipe) in zip(rows, sorted(recipes.items()), strict=True):
        cells = [cell.strip() for cell in row.strip("|").split(" | ")]
        targets = ", ".join(recipe.get("targets", [recipe["target"]]))
        assert cells[:4] == [f"`{name}`", recipe["model"], recipe["method"], targets]
        assert cells[5] == recipe["title"]


def test_recipes_of_third_party_plugins_stay_out_of_the_readme() -> None:
    class Example:
        @hookimpl
        def register_recipes(self, register: Any) -> None:
            register(EXAMPLE_PLUGIN / "mft_recipes_example" / "recipes" / "example-mistral-7b-support.yaml")

    registry = build_registry(extra_plugins=[("example", Example())])
    assert "example-mistral-7b-support" in registry.recipes
    assert catalogue_table(registry) == catalogue_table(get_registry())


def test_only_the_text_between_the_markers_changes() -> None:
    readme = f"# intro\n{START}\nold table\n{END}\n## after\n"
    assert replace_part(readme, "catalogue", "| new |") == f"# intro\n{START}\n| new |\n{END}\n## after\n"
    with pytest.raises(ValueError, match=f"README.md must hold {START} and then {END}"):
        replace_part("# no markers\n", "catalogue", "| new |", where="README.md")
