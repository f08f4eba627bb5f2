"""A plugin's keys are accepted only when the plugin is listed under `plugins:`, as axolotl merges a
listed plugin's argument model into its config model (the truth tier checks axolotl's own verdict:
tests/truth/test_truth_plugins.py). The keys come from the schema's fragments, generated from axolotl's
integrations; a plugin the schema does not know is a warning, and so are the keys it might add."""

from __future__ import annotations

from typing import Any

import pytest

from mft_recipes.host import get_registry
from mft_recipes.problems import Problem, format_path
from mft_recipes.schemas import load_schema
from mft_recipes.validation import validate_document
from tests.axolotl_plugin.configs import mistral_lora as config

LIGER = "axolotl.integrations.liger.LigerPlugin"
KERNELS = "axolotl.integrations.kernels.KernelsPlugin"


def found(document: dict[str, Any]) -> list[Problem]:
    return validate_document(document, "axolotl", get_registry())


def by_key(problems: list[Problem]) -> dict[str, tuple[str, str, str]]:
    return {format_path(p.path): (p.severity, p.code, p.message) for p in problems}


LIGER_KEYS = {"liger_rope": True, "liger_rms_norm": True, "liger_glu_activation": True}


def test_liger_keys_without_the_plugin_are_unknown_and_say_which_plugin_brings_them() -> None:
    problems = by_key(found(config(**LIGER_KEYS)))
    severity, code, message = problems["liger_rope"]
    assert (severity, code) == ("error", "unknown-key")
    assert f"allowed only when plugins lists {LIGER}" in message
    assert set(problems) == set(LIGER_KEYS)


@pytest.mark.parametrize(
    "name",
    [
        LIGER,
        "axolotl.integrations.liger.plugin.LigerPlugin",  # the module that defines it
        "liger.LigerPlugin",  # axolotl's load_plugin retries a name with the axolotl.integrations. prefix
    ],
)
def test_liger_keys_with_the_plugin_listed_are_accepted(name: str) -> None:
    assert found(config(plugins=[name], **LIGER_KEYS)) == []


def test_a_plugin_key_is_still_checked_for_its_type() -> None:
    problems = by_key(found(config(plugins=[LIGER], liger_rope="yes")))
    assert problems == {"liger_rope": ("error", "schema-type", "expected true or false, got 'yes'")}


def test_each_plugin_brings_its_own_keys_only() -> None:
    kernels = config(plugins=[KERNELS], use_scattermoe=True, use_sonicmoe=False)
    assert found(kernels) == []
    both = config(plugins=[KERNELS], use_scattermoe=True, liger_rope=True)
    assert set(by_key(found(both))) == {"liger_rope"}
    assert found(config(plugins=[KERNELS, LIGER], use_scattermoe=True, liger_rope=True)) == []


def test_the_fragments_come_from_axolotls_integrations() -> None:
    """Generated, not typed: every plugin axolotl 0.19 ships, its keys under $defs."""
    schema = load_schema("axolotl")
    plugins = schema["x-axolotl-plugins"]
    assert {LIGER, KERNELS} <= set(plugins)
    liger = schema["$defs"][f"plugin {LIGER}"]["properties"]
    assert {
        "liger_rope",
        "liger_rms_norm",
        "liger_glu_activation",
        "liger_fused_linear_cross_entropy",
    } <= set(liger)
    assert {"use_scattermoe", "use_sonicmoe"} <= set(schema["$defs"][f"plugin {KERNELS}"]["properties"])
    assert not set(liger) & set(schema["properties"]), "a plugin key is not a key of the config model itself"


def test_an_unknown_plugin_is_a_warning_and_the_keys_it_may_add_are_warnings_too() -> None:
    document = config(plugins=["my_company.plugins.FastPlugin"], fast_kernels=True, lora_dropuot=0.1)
    problems = by_key(found(document))
    assert problems["plugins[0]"][:2] == ("warning", "unknown-plugin")
    assert "a third party's plugin, or a typo" in problems["plugins[0]"][2]
    assert problems["fast_kernels"][:2] == ("warning", "unchecked-key")
    severity, code, message = problems["lora_dropuot"]
    assert (severity, code) == ("warning", "unchecked-key")
    assert "did you mean lora_dropout" in message
    assert not any(problem.is_error for problem in found(document))


def test_a_known_plugins_keys_stay_known_next_to_an_unknown_plugin() -> None:
    document = config(plugins=[LIGER, "my_company.plugins.FastPlugin"], liger_rope=True)
    assert set(by_key(found(document))) == {"plugins[1]"}


def test_a_plugin_name_with_a_typo_is_suggested() -> None:
    problems = by_key(found(config(plugins=["axolotl.integrations.liger.LigerPlugn"], liger_rope=True)))
    assert f"did you mean {LIGER}?" in problems["plugins[0]"][2]


def test_a_plugin_the_schema_could_not_generate_says_why() -> None:
    """axolotl 0.19's llm_compressor integration imports llmcompressor, which axolotl does not install."""
    schema = load_schema("axolotl")
    assert "axolotl.integrations.llm_compressor" in schema["x-axolotl-plugins-not-generated"]
    name = "axolotl.integrations.llm_compressor.LLMCompressorPlugin"
    problems = by_key(found(config(plugins=[name], llmcompressor={"recipe": "r.yaml"})))
    assert "could not be imported when the schema was generated" in problems["plugins[0]"][2]
    assert problems["llmcompressor"][:2] == ("warning", "unchecked-key")
