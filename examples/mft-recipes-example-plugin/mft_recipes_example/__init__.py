"""An example third-party plugin for mft-recipes: one recipe and one validator.

mft-recipes finds it through the entry point declared in this distribution's pyproject.toml:

    [project.entry-points.mft_recipes]
    example = "mft_recipes_example"

It imports only `mft_recipes`, the API for plugins. Each hook below is a plain function marked with
`hookimpl`; the host calls it with a `register` callable. Heavy libraries (torch, transformers, ...)
would be imported inside the functions that use them, never here: `mft-recipes --help`, `list` and
`render` load every plugin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mft_recipes

RECIPES = Path(__file__).parent / "recipes"


@mft_recipes.hookimpl
def register_recipes(register: Callable[[mft_recipes.Recipe | Path], None]) -> None:
    for path in sorted(RECIPES.glob("*.yaml")):
        register(path)


def eval_without_data(document: Any, context: mft_recipes.ValidationContext) -> Iterator[mft_recipes.Problem]:
    """Evaluation asked for, but no data held out for it: the run would report no eval loss at all."""
    asks_for_eval = [key for key in ("evals_per_epoch", "eval_steps") if document.get(key)]
    has_eval_data = bool(document.get("val_set_size")) or bool(document.get("test_datasets"))
    if asks_for_eval and not has_eval_data:
        yield mft_recipes.Problem(
            f"{asks_for_eval[0]} is set but there is no evaluation data (val_set_size is 0 and there are "
            "no test_datasets), so no evaluation loss will be reported; set val_set_size (e.g. 0.02) or "
            "test_datasets, or drop the key",
            (asks_for_eval[0],),
            code="eval-without-data",
            severity="warning",
        )


@mft_recipes.hookimpl
def register_validators(register: Callable[[mft_recipes.Validator], None]) -> None:
    register(
        mft_recipes.Validator(
            name="example-eval-without-data",
            kinds=("axolotl",),
            check=eval_without_data,
            description="Evaluation configured without evaluation data.",
        )
    )
