"""Parameter sets: a recipe that extends one gets the set's parameters and document, changes what it
names, and is refused (file, line, key) when the set is unknown, for another target, or leaves a new
parameter half-declared. The sets and recipes here are written for the test; the built-in ones are
proven by tests/host/test_host_renders.py (byte-identical renders) and test_host_every_recipe.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mft_recipes import ParameterSet, hookimpl
from mft_recipes.host import Registry, build_registry
from mft_recipes.recipes import ParameterError, resolve_parameters
from mft_recipes.render import render_recipe
from mft_recipes.schemas import check_against_schema

SET: dict[str, Any] = {
    "name": "test-set",
    "target": "axolotl",
    "description": "for the test",
    "parameters": {
        "base_model": {"type": "string", "default": "mistralai/Mistral-7B-v0.3", "help": "the base"},
        "dataset": {"type": "string", "required": True, "help": "the data"},
        "sequence_len": {
            "type": "integer",
            "minimum": 128,
            "maximum": 4096,
            "default": 1024,
            "help": "tokens",
        },
    },
    "document": {
        "base_model": "${base_model}",
        "adapter": None,
        "lora_r": None,
        "datasets": [{"path": "${dataset}", "type": "chat_template"}],
        "sequence_len": "${sequence_len}",
        "output_dir": "./out",
        "micro_batch_size": 1,
        "gradient_accumulation_steps": 1,
        "num_epochs": 1,
        "learning_rate": 0.0002,
        "optimizer": "adamw_torch_fused",
    },
}
RECIPE: dict[str, Any] = {
    "name": "test-recipe",
    "title": "a recipe that extends test-set",
    "description": "for the test",
    "model": "Mistral-7B-v0.3",
    "method": "lora",
    "target": "axolotl",
    "hardware": {"gpus": 1, "gpu": "h100-80gb", "gpu_memory_gb": 80},
    "extends": "test-set",
    "parameters": {
        "sequence_len": {"default": 2048},
        "lora_r": {"type": "integer", "minimum": 1, "default": 8, "help": "LoRA rank"},
    },
    "document": {
        "lora_r": "${lora_r}",
        "adapter": "lora",
        "lora_target_modules": ["q_proj"],
        "output_dir": None,
    },
}


class Files:
    """A plugin that registers the parameter set and recipe files it is given."""

    def __init__(self, sets: list[Path | ParameterSet], recipes: list[Path]) -> None:
        self.sets, self.recipes = sets, recipes

    @hookimpl
    def register_parameter_sets(self, register: Any) -> None:
        for item in self.sets:
            register(item)

    @hookimpl
    def register_recipes(self, register: Any) -> None:
        for path in self.recipes:
            register(path)


def write(tmp_path: Path, name: str, data: dict[str, Any]) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def registry_with(tmp_path: Path, recipe: dict[str, Any], parameter_set: dict[str, Any] = SET) -> Registry:
    plugin = Files([write(tmp_path, "set", parameter_set)], [write(tmp_path, "recipe", recipe)])
    return build_registry(extra_plugins=[("test", plugin)])


def line_of(path: Path, start: str) -> int:
    return next(n for n, text in enumerate(path.read_text().splitlines(), 1) if text.startswith(start))


def test_the_recipe_gets_the_sets_parameters_first_each_changed_key_by_key(tmp_path: Path) -> None:
    registry = registry_with(tmp_path, RECIPE)
    assert registry.errors == []
    recipe = registry.recipes["test-recipe"]
    assert list(recipe.parameters) == ["base_model", "dataset", "sequence_len", "lora_r"]
    sequence_len = recipe.parameters["sequence_len"]
    assert sequence_len.default == 2048
    assert (sequence_len.help, sequence_len.schema) == (
        "tokens",
        {"type": "integer", "minimum": 128, "maximum": 4096},
    )
    assert recipe.parameters["dataset"].required


def test_the_document_renders_in_the_sets_order_with_slots_filled_and_keys_removed(tmp_path: Path) -> None:
    registry = registry_with(tmp_path, RECIPE)
    document = render_recipe(registry.recipes["test-recipe"], {"dataset": "train.jsonl"}, registry).document
    assert list(document) == [
        "base_model",
        "adapter",  # slots: in the set's place, filled by the recipe
        "lora_r",
        "datasets",
        "sequence_len",  # output_dir: removed by the recipe's null
        "micro_batch_size",
        "gradient_accumulation_steps",
        "num_epochs",
        "learning_rate",
        "optimizer",
        "lora_target_modules",  # the recipe's own key, after the set's
    ]
    assert (document["adapter"], document["lora_r"], document["sequence_len"]) == ("lora", 8, 2048)


def test_an_unfilled_slot_is_left_out(tmp_path: Path) -> None:
    full = {**RECIPE, "method": "full", "parameters": {}, "document": {}}
    registry = registry_with(tmp_path, full)
    document = render_recipe(registry.recipes["test-recipe"], {"dataset": "train.jsonl"}, registry).document
    assert "adapter" not in document and "lora_r" not in document


def test_the_sets_bounds_hold_where_the_recipe_keeps_them(tmp_path: Path) -> None:
    registry = registry_with(tmp_path, RECIPE)
    with pytest.raises(ParameterError, match=r"sequence_len=8192: .*4096"):
        resolve_parameters(registry.recipes["test-recipe"], {"dataset": "d", "sequence_len": 8192})


def test_an_unknown_set_is_refused_with_the_recipes_file_and_line(tmp_path: Path) -> None:
    registry = registry_with(tmp_path, {**RECIPE, "extends": "no-such-set"})
    recipe = tmp_path / "recipe.yaml"
    assert registry.errors == [
        f"plugin 'test': invalid recipe, skipped: {recipe}:{line_of(recipe, 'extends:')}: error: extends: no "
        "plugin registers a parameter set 'no-such-set' (`mft-recipes plugins` lists them) [recipe-extends]"
    ]
    assert "test-recipe" not in registry.recipes


def test_a_set_for_another_target_is_refused(tmp_path: Path) -> None:
    registry = registry_with(tmp_path, RECIPE, {**SET, "target": "la-plateforme"})
    (error,) = registry.errors
    assert "extends: parameter set 'test-set'" in error
    assert "is for target 'la-plateforme', not 'axolotl' [recipe-extends]" in error


def test_a_new_parameter_without_help_names_its_line(tmp_path: Path) -> None:
    half = {**RECIPE, "parameters": {"lora_r": {"type": "integer", "default": 8}}}
    registry = registry_with(tmp_path, half)
    recipe = tmp_path / "recipe.yaml"
    (error,) = registry.errors
    assert (
        f"{recipe}:{line_of(recipe, '  lora_r:')}: error: parameters.lora_r.help: required key is missing"
        in error
    )
    assert "parameter set 'test-set' has no 'lora_r': a new parameter is declared in full" in error


def test_a_recipe_that_extends_nothing_still_declares_every_parameter_in_full() -> None:
    bare = {key: value for key, value in RECIPE.items() if key != "extends"}
    problems = check_against_schema(bare, "recipe")
    assert [(p.path, p.message) for p in problems] == [
        (("parameters", "sequence_len", "help"), "required key is missing")
    ]
    assert check_against_schema(RECIPE, "recipe") == []


def test_a_set_file_is_held_to_the_parameter_schema_of_recipes(tmp_path: Path) -> None:
    """parameter-set.schema.json takes its parameter from recipe.schema.json (a `$ref` across files)."""
    sloppy = {**SET, "parameters": {"base_model": {"type": "string", "hlep": "typo"}}}
    registry = registry_with(tmp_path, RECIPE, sloppy)
    errors = "\n".join(registry.errors)
    assert "invalid parameter set, skipped" in errors
    assert (
        "parameters.base_model.hlep" in errors
        and "parameters.base_model.help: required key is missing" in errors
    )
    assert "test-set" not in registry.parameter_sets
    assert "extends: no plugin registers a parameter set 'test-set'" in errors


def test_a_plugin_may_register_a_set_as_a_value(tmp_path: Path) -> None:
    value = ParameterSet(SET["name"], SET["target"], SET["description"], SET["parameters"], SET["document"])
    plugin = Files([value], [write(tmp_path, "recipe", RECIPE)])
    registry = build_registry(extra_plugins=[("test", plugin)])
    assert registry.errors == []
    assert registry.parameter_sets["test-set"] is value
    assert registry.plugins["test"].added == {"parameter set": ["test-set"], "recipe": ["test-recipe"]}
