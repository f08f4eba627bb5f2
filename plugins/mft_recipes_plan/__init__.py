"""Built-in plugin: `mft-recipes plan`, the parameters, GPU memory, time and cost of a recipe before
anyone rents hardware; the short plan in `list` and `show`; a warning from `render` when a recipe does
not fit the hardware it names.

Pure arithmetic (docs/plan.md): nothing heavy is imported, so `list` and `render` stay fast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mft_recipes import Architectures, Recipe, RenderedDocument, Target, hookimpl


@hookimpl
def register_commands(cli: Any) -> None:
    from mft_recipes_plan.command import plan_command

    cli.add_command(plan_command)


# (recipe name, recipe file, id of the registry's architectures) → facts: `list` asks for every recipe,
# `show` again.
_SHORT_PLANS: dict[tuple[str, str, int], dict[str, str]] = {}


@hookimpl
def recipe_facts(
    recipe: Recipe,
    target: Target,
    architectures: Architectures,
    render: Callable[[dict[str, Any]], RenderedDocument],
) -> dict[str, str] | None:
    key = (recipe.name, recipe.source, id(architectures))
    if key not in _SHORT_PLANS:
        _SHORT_PLANS[key] = short_plan(target, architectures, render)
    return dict(_SHORT_PLANS[key])


def short_plan(
    target: Target, architectures: Architectures, render: Callable[[dict[str, Any]], RenderedDocument]
) -> dict[str, str]:
    """The plan of a recipe (rendered by `render(overrides)`) with its defaults on its own hardware, in
    three short facts."""
    from mft_recipes_plan.plan import PLANNED_KINDS, PlanOptions, plan_rendered

    if target.kind not in PLANNED_KINDS:
        return {}
    try:
        plan = plan_rendered(render({}), PlanOptions(), architectures)
    except Exception as error:  # a fact that cannot be computed is shown, not fatal to `list`
        return {"plan": f"unavailable: {error}"}
    if plan.memory is None or plan.counts is None:
        return {"trainable": "hosted", "memory/GPU": "hosted", "fits": "hosted ($4 min/job)"}
    trainable = plan.counts.trainable
    headroom = plan.headroom_gib or 0.0
    return {
        "trainable": f"{_short(trainable)} ({trainable / plan.counts.total:.2%})",
        "memory/GPU": f"{plan.memory_per_gpu_gib:.1f} GiB",
        "fits": f"yes, {headroom:.1f} GiB free" if plan.fits else f"NO, {-headroom:.1f} GiB short",
    }


def _short(count: int) -> str:
    return f"{count / 1e9:.2f}B" if count >= 1e9 else f"{count / 1e6:.1f}M"


@hookimpl
def render_warnings(rendered: RenderedDocument, architectures: Architectures) -> list[str] | None:
    """Warn when the rendered document does not fit the hardware its recipe names."""
    if rendered.target.kind not in ("axolotl", "trl"):
        return None
    if rendered.parameters.get("device") == "cpu":
        return None  # a CPU smoke-test run (the CPU profile) is not meant for the recipe's GPUs
    from mft_recipes_plan.plan import PlanOptions, plan_rendered

    try:
        plan = plan_rendered(rendered, PlanOptions(), architectures)
    except Exception as error:
        return [f"plan: cannot plan this document: {error}"]
    shortfall = plan.shortfall()
    if shortfall is None:
        return None
    words = " ".join(f"{key}={value}" for key, value in rendered.overrides.items())
    target = "" if rendered.target.name == rendered.recipe.target else f" --target {rendered.target.name}"
    see = f"mft-recipes plan {rendered.recipe.name}{target} {words}".rstrip()
    return [f"plan: {shortfall}; see `{see}` for the breakdown"]
