"""The recipe files stay readable: parameters in block style, no long flow mapping, and no axolotl recipe
that copies what the axolotl parameter set holds instead of extending it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
FILES = sorted((REPO / "recipes").glob("*.yaml")) + sorted((REPO / "plugins").glob("*/parameter_sets/*.yaml"))
LONGEST_FLOW_MAPPING = 100


def flow_mappings(text: str) -> Iterator[tuple[int, int]]:
    """(line, characters) of every flow mapping (`{...}`) written on one line."""
    starts: list[int | None] = []
    for event in yaml.parse(text):
        if isinstance(event, yaml.MappingStartEvent):
            starts.append(event.start_mark.index if event.flow_style and event.start_mark else None)
        elif isinstance(event, yaml.MappingEndEvent) and event.end_mark:
            start = starts.pop()
            if start is not None:
                yield text.count("\n", 0, start) + 1, event.end_mark.index - start


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_no_flow_mapping_is_longer_than_100_characters(path: Path) -> None:
    long = [(line, size) for line, size in flow_mappings(path.read_text(encoding="utf-8")) if size > 100]
    assert long == [], f"{path.name}: write these as block mappings: {long}"


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_parameters_are_block_mappings(path: Path) -> None:
    root = yaml.compose(path.read_text(encoding="utf-8"))
    assert isinstance(root, yaml.MappingNode)
    parameters = next(value for key, value in root.value if key.value == "parameters")
    assert isinstance(parameters, yaml.MappingNode) and not parameters.flow_style
    flow = [
        key.value for key, spec in parameters.value if isinstance(spec, yaml.MappingNode) and spec.flow_style
    ]
    assert flow == [], f"{path.name}: parameters in flow style"


def test_the_flow_mapping_finder_finds_one() -> None:
    assert list(flow_mappings("a:\n  b: {c: 1, d: [2]}\n")) == [(2, len("{c: 1, d: [2]}"))]


def test_every_axolotl_recipe_extends_the_axolotl_parameter_set() -> None:
    recipes = [yaml.safe_load(path.read_text(encoding="utf-8")) for path in (REPO / "recipes").glob("*.yaml")]
    axolotl = [recipe for recipe in recipes if recipe["target"] == "axolotl"]
    assert len(axolotl) >= 7  # the glob finds the recipes (more come with new ones)
    assert {recipe["name"]: recipe.get("extends") for recipe in axolotl} == {
        recipe["name"]: "axolotl" for recipe in axolotl
    }
