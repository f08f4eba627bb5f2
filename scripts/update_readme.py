"""Regenerate the recipe catalogue in README.md from the registered built-in recipes.

The table sits between `<!-- catalogue:start -->` and `<!-- catalogue:end -->`; everything else in the
README is left as it is. Recipes from third-party plugins installed in the environment are left out:
the README describes what ships in the `mft-recipes` distribution.

    python scripts/update_readme.py           # rewrite README.md
    python scripts/update_readme.py --check   # exit 1 if README.md is not current (tests and CI)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # `python scripts/update_readme.py` finds scripts.markers as pytest does

from mft_recipes.host import BUILTIN_DISTRIBUTION, Registry, get_registry  # noqa: E402
from mft_recipes.recipes import Recipe  # noqa: E402
from scripts.markers import markers, update_part  # noqa: E402

README = REPO / "README.md"
PART = "catalogue"
START, END = markers(PART)
COLUMNS = ("recipe", "model", "method", "targets", "hardware", "what it is")


def _hardware(recipe: Recipe) -> str:
    hardware = recipe.hardware
    return "hosted" if hardware.gpus == 0 else f"{hardware.gpus}× {hardware.gpu}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def catalogue_table(registry: Registry) -> str:
    """The Markdown table of the built-in recipes, sorted by name."""
    rows = [
        (
            f"`{recipe.name}`",
            recipe.model,
            recipe.method,
            ", ".join(recipe.renders_for),
            _hardware(recipe),
            recipe.title,
        )
        for recipe in sorted(registry.recipes.values(), key=lambda recipe: recipe.name)
        if registry.plugins[recipe.plugin].distribution == BUILTIN_DISTRIBUTION
    ]
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md is not current")
    args = parser.parse_args(argv)
    table = catalogue_table(get_registry())
    return update_part(README, PART, table, check=args.check, command="python scripts/update_readme.py")


if __name__ == "__main__":
    sys.exit(main())
