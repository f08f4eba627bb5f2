"""Every built-in recipe renders byte for byte what tests/fixtures/renders/ holds.

The files were written by `python -m tests.host.renders` from the recipes as they were before they were
rewritten onto shared parameter sets (block style, comment headings), and committed before that rewrite:
they are the earlier code's output, not this code's, so the comparison can fail. A render that is meant
to change is regenerated with the same command, and its diff is reviewed with the change.
"""

from __future__ import annotations

import pytest

from mft_recipes.recipes import Recipe

from .renders import FIXTURES, cases, main, rendered_text

CASES = list(cases())


@pytest.mark.parametrize(("name", "recipe", "overrides"), CASES, ids=[name for name, _, _ in CASES])
def test_the_render_is_the_committed_one(name: str, recipe: Recipe, overrides: dict[str, object]) -> None:
    committed = FIXTURES / name
    assert committed.is_file(), f"no {committed}: python -m tests.host.renders"
    assert rendered_text(recipe, overrides) == committed.read_text(encoding="utf-8")


def test_no_committed_render_is_left_without_its_case() -> None:
    assert main(["--check"]) == 0


def test_every_builtin_recipe_and_every_truth_variant_is_kept() -> None:
    names = {name for name, _, _ in CASES}
    assert {"mixtral-moe.defaults.yaml", "mixtral-moe.resized.yaml", "mixtral-moe.no-eval.yaml"} <= names
    assert {
        "mixtral-moe.cpu.yaml",
        "mistral-7b-full.cpu-run.yaml",
        "platform-classifier.defaults.json",
    } <= names
