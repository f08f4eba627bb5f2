"""axolotl's own verdict on plugin keys, and fast `validate` agrees: with the plugin listed, axolotl's
validation (its prepare_plugins + merge_input_args path) keeps the plugin's keys; without it, it drops
them without a word, and `validate` refuses them as unknown keys. `validate --deep` validates plugin keys
as a real run does, and the fragments in the committed schema are the plugins' own argument models."""

from __future__ import annotations

from typing import Any

import pytest
from mft_recipes_axolotl import deep

from mft_recipes.host import get_registry
from mft_recipes.schemas import load_schema
from mft_recipes.validation import ValidationContext, validate_document
from tests.axolotl_plugin.configs import mistral_lora as config

pytestmark = [pytest.mark.axolotl, pytest.mark.usefixtures("axolotl_installed")]

LIGER = "axolotl.integrations.liger.LigerPlugin"
KERNELS = "axolotl.integrations.kernels.KernelsPlugin"
# (plugin, its keys) as axolotl's own published examples use them (examples/*/*liger*.yml,
# examples/*/*scattermoe*.yml).
CASES = {
    "liger": (LIGER, {"liger_rope": True, "liger_rms_norm": True, "liger_glu_activation": True}),
    "kernels": (KERNELS, {"use_scattermoe": True}),
}


def fast(document: dict[str, Any]) -> set[tuple[str, str]]:
    problems = validate_document(document, "axolotl", get_registry())
    return {(problem.code, str(problem.path[0])) for problem in problems if problem.is_error}


@pytest.mark.parametrize("case", list(CASES))
def test_axolotl_keeps_a_plugins_keys_only_when_it_is_listed_and_validate_agrees(case: str) -> None:
    plugin, keys = CASES[case]
    listed = deep.validated_config(config(plugins=[plugin], **keys), gpu="h100-80gb")
    assert {key: listed.get(key) for key in keys} == keys
    assert fast(config(plugins=[plugin], **keys)) == set()

    unlisted = deep.validated_config(config(**keys), gpu="h100-80gb")
    assert not any(key in unlisted for key in keys), "axolotl drops them without a word"
    assert fast(config(**keys)) == {("unknown-key", key) for key in keys}


def test_the_deep_key_check_reads_the_model_with_the_listed_plugins_merged() -> None:
    plugin, keys = CASES["liger"]
    assert deep.key_problems(config(plugins=[plugin], **keys)) == []
    found = {problem.path for problem in deep.key_problems(config(**keys)) if problem.is_error}
    assert found == {(key,) for key in keys}


def test_validate_deep_honours_plugins() -> None:
    plugin, keys = CASES["liger"]
    context = ValidationContext("axolotl", get_registry().architecture_view, gpu="h100-80gb")
    assert [str(problem) for problem in deep.check_deep(config(plugins=[plugin], **keys), context)] == []
    unlisted = {problem.code for problem in deep.check_deep(config(**keys), context)}
    assert "axolotl-unknown-key" in unlisted


def test_each_fragment_is_the_plugins_own_argument_model() -> None:
    """The committed fragments list every field (and alias) of each plugin's get_input_args() model that
    axolotl's merge adds to its config model: the plugins axolotl ships, at the pinned version (so the
    axolotl_latest session deselects it, as it does the schema's --check)."""
    from axolotl.integrations.base import PluginManager
    from axolotl.integrations.config import merge_input_args
    from axolotl.utils.schemas.config import AxolotlInputConfig

    schema = load_schema("axolotl")
    base = set(deep._field_names(AxolotlInputConfig))
    for plugin in schema["x-axolotl-plugins"]:
        manager = PluginManager.get_instance()
        manager.plugins.clear()
        manager.register(plugin)
        merged = set(deep._field_names(merge_input_args()[1])) - base
        assert set(schema["$defs"][f"plugin {plugin}"]["properties"]) == merged, plugin
    PluginManager.get_instance().plugins.clear()
