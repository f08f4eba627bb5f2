"""A recipe's hardware: `gpus` on one machine, or `nodes` × `gpus_per_node`; a recipe that gives both ways
must give the same world size, or it is refused with its file and line."""

from __future__ import annotations

from pathlib import Path

from .test_host_parameter_sets import RECIPE, line_of, registry_with

H100 = {"gpu": "h100-80gb", "gpu_memory_gb": 80}


def test_nodes_and_gpus_per_node_make_the_world_size(tmp_path: Path) -> None:
    registry = registry_with(tmp_path, {**RECIPE, "hardware": {"nodes": 4, "gpus_per_node": 8, **H100}})
    assert registry.errors == []
    hardware = registry.recipes["test-recipe"].hardware
    assert (hardware.gpus, hardware.nodes, hardware.gpus_per_node) == (32, 4, 8)
    assert hardware.short() == "4 nodes × 8× h100-80gb"
    assert str(hardware) == "4 nodes × 8× h100-80gb (80 GB)"


def test_gpus_alone_is_one_machine(tmp_path: Path) -> None:
    registry = registry_with(tmp_path, {**RECIPE, "hardware": {"gpus": 8, **H100}})
    hardware = registry.recipes["test-recipe"].hardware
    assert (hardware.gpus, hardware.nodes, hardware.gpus_per_node) == (8, 1, 8)
    assert hardware.short() == "8× h100-80gb"


def test_gpus_that_are_not_nodes_times_gpus_per_node_are_refused(tmp_path: Path) -> None:
    recipe = {**RECIPE, "hardware": {"gpus": 12, "nodes": 2, "gpus_per_node": 8, **H100}}
    registry = registry_with(tmp_path, recipe)
    path = tmp_path / "recipe.yaml"
    assert registry.errors == [
        f"plugin 'test': invalid recipe, skipped: {path}:{line_of(path, '  gpus:')}: error: hardware.gpus: gpus "
        "12 is not nodes 2 × gpus_per_node 8: give gpus (one machine) or nodes and gpus_per_node "
        "[recipe-world-size]"
    ]


def test_nodes_without_gpus_per_node_is_refused_by_the_schema(tmp_path: Path) -> None:
    registry = registry_with(tmp_path, {**RECIPE, "hardware": {"nodes": 2, **H100}})
    (error,) = registry.errors
    assert "hardware" in error and "gpus_per_node" in error
    assert "test-recipe" not in registry.recipes
