"""The order the host calls plugins in, as hookspecs.py states it: load order, built-ins first."""

from __future__ import annotations

from typing import Any

from mft_recipes.hookspecs import hookimpl
from mft_recipes.host import build_registry
from mft_recipes.render import render_recipe


class Observer:
    """A third-party plugin that notes what the document looks like when its turn comes."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    @hookimpl
    def adjust_document(self, document: dict[str, Any], context: Any) -> None:
        self.seen.append(document.get("bf16"))
        document["bf16"] = "observed"


def test_a_third_party_adjust_document_runs_after_the_builtins_and_sees_their_changes() -> None:
    observer = Observer()
    registry = build_registry(extra_plugins=[("observer", observer)])
    recipe = registry.recipes["mistral-7b-qlora"]
    assert recipe.document["bf16"] is not False, "else the test below proves nothing"
    rendered = render_recipe(recipe, {"dataset": "train.jsonl", "device": "cpu"}, registry)
    assert observer.seen == [False], "the axolotl plugin's CPU profile came first"
    assert rendered.document["bf16"] == "observed", "and the third party's change is kept"
