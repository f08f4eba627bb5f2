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

from mft_recipes.host import BUILTIN_DISTRIBUTION, Registry, get_registry
from mft_recipes.output import write_text_atomic
from mft_recipes.recipes import Recipe

README = Path(__file__).resolve().parents[1] / "README.md"
START = "<!-- catalogue:start -->"
END = "<!-- catalogue:end -->"
COLUMNS = ("recipe", "model", "method", "target", "hardware", "what it is")


def _hardware(recipe: Recipe) -> str:
    hardware = recipe.hardware
    return "hosted" if hardware.gpus == 0 else f"{hardware.gpus}× {hardware.gpu}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def catalogue_table(registry: Registry) -> str:
    """The Markdown table of the built-in recipes, sorted by name."""
    rows = [
        (f"`{recipe.name}`", recipe.model, recipe.method, recipe.target, _hardware(recipe), recipe.title)
        for recipe in sorted(registry.recipes.values(), key=lambda recipe: recipe.name)
        if registry.plugins[recipe.plugin].distribution == BUILTIN_DISTRIBUTION
    ]
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def with_catalogue(readme: str, table: str) -> str:
    """`readme` with the text between the markers replaced by `table`."""
    if readme.count(START) != 1 or readme.count(END) != 1 or readme.index(START) > readme.index(END):
        raise ValueError(f"README.md must hold {START} and then {END}, once each")
    head, rest = readme.split(START)
    _, tail = rest.split(END)
    return f"{head}{START}\n{table}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md is not current")
    args = parser.parse_args(argv)
    current = README.read_text(encoding="utf-8")
    wanted = with_catalogue(current, catalogue_table(get_registry()))
    if current == wanted:
        return 0
    if args.check:
        print(
            "README.md: the recipe catalogue is out of date; run `python scripts/update_readme.py`",
            file=sys.stderr,
        )
        return 1
    write_text_atomic(README, wanted)
    print("README.md: catalogue updated", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
