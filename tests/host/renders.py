"""What every built-in recipe renders, kept as files: tests/fixtures/renders/RECIPE.VARIANT.EXT.

The files hold `mft-recipes render` output (the comment header included) for each built-in recipe, with
its defaults, the truth tier's variants (tests/truth/cases.py), the CPU profile and the other chat format.
tests/host/test_host_renders.py renders them again and compares byte for byte, so a change to how recipes
are written (a shared parameter set, comments, YAML style) that changes what axolotl or La Plateforme
would receive fails there. A change meant to alter a render is made visible by regenerating the files
and committing their diff with it:

    python -m tests.host.renders           # rewrite tests/fixtures/renders/
    python -m tests.host.renders --check   # exit 1 when a file differs or is missing or extra
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mft_recipes.host import BUILTIN_DISTRIBUTION, get_registry
from mft_recipes.output import write_text_atomic
from mft_recipes.recipes import Recipe
from mft_recipes.render import emit, render_recipe
from tests.truth.cases import CPU_OVERRIDES, VARIANTS, overrides_for

from .samples import sample_value

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "renders"
# Variants beyond the truth tier's: the CPU profile alone and as the truth tier's CPU runs use it. Each
# applies to the recipes that declare every parameter it sets.
EXTRA_VARIANTS: dict[str, dict[str, Any]] = {"cpu": {"device": "cpu"}, "cpu-run": CPU_OVERRIDES}


def builtin_recipes() -> list[Recipe]:
    """The recipes the mft-recipes distribution ships (third-party plugins installed here are left out)."""
    registry = get_registry()
    builtin = (
        r
        for r in registry.recipes.values()
        if registry.plugins[r.plugin].distribution == BUILTIN_DISTRIBUTION
    )
    return sorted(builtin, key=lambda recipe: recipe.name)


def cases() -> Iterator[tuple[str, Recipe, dict[str, Any]]]:
    """(file name, recipe, overrides) for every render kept as a file. Required parameters get fixed sample
    values (`dataset=train.jsonl`, not a path of this machine), so the files are the same everywhere."""
    for recipe in builtin_recipes():
        required = {
            name: "train.jsonl" if name == "dataset" else sample_value(name, parameter.schema)
            for name, parameter in recipe.parameters.items()
            if parameter.required
        }
        extension = "json" if get_registry().targets[recipe.target].format == "json" else "yaml"
        for variant in VARIANTS:
            overrides = overrides_for(recipe, variant) if recipe.target == "axolotl" else {}
            if variant == "defaults" or recipe.target == "axolotl":
                yield f"{recipe.name}.{variant}.{extension}", recipe, {**required, **overrides}
        for variant, overrides in EXTRA_VARIANTS.items():
            if set(overrides) <= set(recipe.parameters):
                yield f"{recipe.name}.{variant}.{extension}", recipe, {**required, **overrides}
        if {"chat_template", "base_model"} <= set(recipe.parameters):  # the template an Instruct model ships
            instruct = next(
                hub_id
                for hub_id in get_registry().architectures[recipe.model].hub_ids
                if "Instruct" in hub_id
            )
            overrides = {"chat_template": "tokenizer_default", "base_model": instruct}
            yield f"{recipe.name}.instruct.{extension}", recipe, {**required, **overrides}


def rendered_text(recipe: Recipe, overrides: dict[str, Any]) -> str:
    """What `mft-recipes render RECIPE key=value ...` prints on stdout for these overrides."""
    rendered = render_recipe(recipe, overrides, get_registry())
    assert not rendered.errors, "\n".join(map(str, rendered.errors))
    return emit(rendered)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when tests/fixtures/renders/ is not current"
    )
    args = parser.parse_args(argv)
    wanted = {name: rendered_text(recipe, overrides) for name, recipe, overrides in cases()}
    present = {path.name for path in FIXTURES.glob("*.*")}
    stale = sorted(
        name
        for name in wanted
        if name not in present or (FIXTURES / name).read_text(encoding="utf-8") != wanted[name]
    )
    extra = sorted(present - set(wanted))
    if args.check:
        for name in stale + extra:
            print(
                f"tests/fixtures/renders/{name} is not current: python -m tests.host.renders", file=sys.stderr
            )
        return 1 if stale or extra else 0
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for name in stale:
        write_text_atomic(FIXTURES / name, wanted[name])
    for name in extra:
        (FIXTURES / name).unlink()
    print(
        f"{len(stale)} written, {len(extra)} removed, {len(wanted) - len(stale)} unchanged", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
