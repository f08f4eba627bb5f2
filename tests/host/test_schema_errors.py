"""Schema problems name a key path and say what was expected; none repeats a mapping or a list from the
document. anyOf/oneOf failures (pydantic writes every optional field as one) descend to the offending key."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mft_recipes.problems import Problem, format_path
from mft_recipes.schemas import check_against_schema, load_schema
from tests.axolotl_plugin.configs import mistral_lora

# A hand-written axolotl config of the kind users start from (valid against the schema), with an
# fsdp_config whose keys the tests below vary too.
VALID_AXOLOTL = mistral_lora(fsdp_config={"offload_params": True})


def axolotl(**changes: Any) -> list[Problem]:
    return check_against_schema({**copy.deepcopy(VALID_AXOLOTL), **changes}, "axolotl")


def shown(problems: list[Problem]) -> list[tuple[str, str, str]]:
    return [(format_path(problem.path), problem.code, problem.message) for problem in problems]


def test_the_base_config_is_valid() -> None:
    assert axolotl() == []


def test_a_wrong_scalar_names_the_key_and_the_expected_type() -> None:
    assert shown(axolotl(lora_r="sixteen")) == [
        ("lora_r", "schema-type", "expected an integer, got 'sixteen'")
    ]


def test_a_typo_in_a_dataset_entry_descends_to_the_key_with_a_did_you_mean() -> None:
    [(path, code, message)] = shown(axolotl(datasets=[{"path": "train.jsonl", "typ": "chat_template"}]))
    assert (path, code) == ("datasets[0].typ", "unknown-key")
    assert message.startswith("unknown key 'typ'; did you mean type")


def test_a_wrong_type_inside_a_dataset_entry_names_the_key() -> None:
    datasets = [{"path": "train.jsonl", "type": "chat_template", "shards": "many"}]
    assert shown(axolotl(datasets=datasets)) == [
        ("datasets[0].shards", "schema-type", "expected an integer, got 'many'")
    ]


def test_a_typo_in_fsdp_config_descends_to_the_key() -> None:
    [(path, code, message)] = shown(axolotl(fsdp_config={"offload_parms": True}))
    assert (path, code) == ("fsdp_config.offload_parms", "unknown-key")
    assert "did you mean offload_params" in message


def test_a_mapping_where_a_list_belongs_is_named_by_kind() -> None:
    assert shown(axolotl(datasets={"path": "train.jsonl"})) == [
        ("datasets", "schema-type", "expected a list, got a mapping")
    ]


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        ({"learning_rate": "fast"}, "learning_rate", "expected a number above 0, got 'fast'"),
        ({"learning_rate": "-1e-4"}, "learning_rate", "expected a number above 0, got '-1e-4'"),
        ({"num_epochs": "-1"}, "num_epochs", "expected a number above 0, got '-1'"),
        ({"learning_rate": -0.1}, "learning_rate", "expected a number > 0, got -0.1"),
        ({"num_epochs": -1}, "num_epochs", "expected a number > 0, got -1"),
        ({"num_epochs": 0}, "num_epochs", "expected a number > 0, got 0"),
        ({"base_model": ""}, "base_model", "expected a non-empty string"),
        (
            {"datasets": [{"path": "", "type": "chat_template"}]},
            "datasets[0].path",
            "expected a non-empty string",
        ),
    ],
)
def test_values_axolotls_own_model_lets_through_are_refused(change: dict, path: str, message: str) -> None:
    """The generator's tightenings (scripts/generate_axolotl_schema.py TIGHTENINGS)."""
    [(found_path, _, found_message)] = shown(axolotl(**change))
    assert found_path == path and found_message.startswith(message)


@pytest.mark.parametrize("written", ["2e-5", "1.0e-5", "0.0002", "3e-4", "5.0e-6"])
def test_a_learning_rate_that_yaml_reads_as_a_string_is_still_a_number(written: str) -> None:
    """PyYAML (YAML 1.1) reads `2e-5` as a string; axolotl's own examples write it so."""
    value = yaml.safe_load(f"learning_rate: {written}")["learning_rate"]
    assert axolotl(learning_rate=value) == []


# --- No problem repeats a mapping or a list ---------------------------------------------------------

CONTAINERS = ({"nested": {"deep": [1, 2]}}, [{"a": 1}, [2, 3]])
BAD_VALUES = (*CONTAINERS, "not-a-valid-value", -7)


def dumps_a_container(problem: Problem, value: Any) -> bool:
    text = problem.message
    return any(mark in text for mark in ("{'", "['", '{"', '["', "[{", "[[")) or (
        isinstance(value, (dict, list)) and (repr(value) in text or json.dumps(value) in text)
    )


def broken_axolotl_documents() -> list[tuple[str, dict[str, Any], Any]]:
    """Every top-level key, every key of a dataset entry and of fsdp_config, set to each bad value."""
    schema = load_schema("axolotl")
    documents = []
    for key in schema["properties"]:
        for value in BAD_VALUES:
            documents.append((key, {**copy.deepcopy(VALID_AXOLOTL), key: value}, value))
    for definition, place in (("SFTDataset", "datasets"), ("FSDPConfig", "fsdp_config")):
        for key in schema["$defs"][definition]["properties"]:
            for value in BAD_VALUES:
                document = copy.deepcopy(VALID_AXOLOTL)
                entry = document["datasets"][0] if place == "datasets" else document["fsdp_config"]
                entry[key] = value
                documents.append((f"{place}.{key}", document, value))
    return documents


def test_no_axolotl_schema_problem_dumps_a_value_and_each_names_a_key() -> None:
    seen: set[str] = set()
    for label, document, value in broken_axolotl_documents():
        for problem in check_against_schema(document, "axolotl"):
            seen.add(problem.code)
            assert problem.path, (label, str(problem))
            assert not dumps_a_container(problem, value), (label, str(problem))
    assert {"schema-type", "schema-enum", "unknown-key", "schema-exclusiveMinimum"} <= seen


# Every keyword the explanations know, in one schema, so that every error code is produced.
EVERY_KEYWORD: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["needed"],
    "additionalProperties": False,
    "dependentRequired": {"with": ["partner"]},
    "properties": {
        "needed": {"type": "integer"},
        "with": {},
        "partner": {},
        "choice": {"enum": ["a", "b"]},
        "fixed": {"const": "x"},
        "bounded": {"type": "number", "minimum": 1, "maximum": 5},
        "open": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "text": {"type": "string", "minLength": 2, "maxLength": 3, "pattern": "^a"},
        "items": {"type": "array", "minItems": 1, "maxItems": 2, "uniqueItems": True},
        "keys": {"type": "object", "minProperties": 1, "maxProperties": 1},
        "even": {"type": "integer", "multipleOf": 2},
        "not_text": {"not": {"type": "string"}},
        "one": {"oneOf": [{"type": "integer"}, {"type": "number"}]},
        "model": {"anyOf": [{"$ref": "#/$defs/model"}, {"type": "null"}]},
        "never": False,
    },
    "$defs": {
        "model": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"size": {"type": "integer"}},
        }
    },
}
CODES = {
    "schema-required",
    "schema-type",
    "schema-enum",
    "schema-const",
    "schema-minimum",
    "schema-maximum",
    "schema-exclusiveMinimum",
    "schema-exclusiveMaximum",
    "schema-minLength",
    "schema-maxLength",
    "schema-pattern",
    "schema-minItems",
    "schema-maxItems",
    "schema-uniqueItems",
    "schema-minProperties",
    "schema-maxProperties",
    "schema-multipleOf",
    "schema-not",
    "schema-oneOf",
    "schema-not-allowed",
    "unknown-key",
}
# One document per code, with mappings and lists where the keyword allows them.
EXAMPLES: dict[str, dict[str, Any]] = {
    "schema-required": {"with": {"a": [1]}},
    "schema-type": {"needed": {"a": [1]}},
    "schema-enum": {"needed": 1, "choice": ["a"]},
    "schema-const": {"needed": 1, "fixed": {"x": 1}},
    "schema-minimum": {"needed": 1, "bounded": 0},
    "schema-maximum": {"needed": 1, "bounded": 9},
    "schema-exclusiveMinimum": {"needed": 1, "open": 0},
    "schema-exclusiveMaximum": {"needed": 1, "open": 1},
    "schema-minLength": {"needed": 1, "text": "a"},
    "schema-maxLength": {"needed": 1, "text": "aaaa"},
    "schema-pattern": {"needed": 1, "text": "bb"},
    "schema-minItems": {"needed": 1, "items": []},
    "schema-maxItems": {"needed": 1, "items": [{"a": 1}, [2], 3]},
    "schema-uniqueItems": {"needed": 1, "items": [{"a": 1}, {"a": 1}]},
    "schema-minProperties": {"needed": 1, "keys": {}},
    "schema-maxProperties": {"needed": 1, "keys": {"a": [1], "b": {"c": 2}}},
    "schema-multipleOf": {"needed": 1, "even": 3},
    "schema-not": {"needed": 1, "not_text": "a"},
    "schema-oneOf": {"needed": 1, "one": 1},
    "schema-not-allowed": {"needed": 1, "never": {"secret": "s3cret"}},
    "unknown-key": {"needed": 1, "stray": {"a": [1]}, "model": {"sise": [1]}},
}


@pytest.mark.parametrize("code", sorted(CODES))
def test_each_code_names_a_key_and_dumps_nothing(code: str) -> None:
    document = EXAMPLES[code]
    problems = check_against_schema(document, EVERY_KEYWORD)
    assert code in {problem.code for problem in problems}
    for problem in problems:
        value = document.get(str(problem.path[0])) if problem.path else document
        assert problem.path and not dumps_a_container(problem, value), str(problem)
    assert not any("s3cret" in problem.message for problem in problems)


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-9, 9)
    | st.sampled_from([0.5, 1.5])
    | st.text("abxyz", max_size=4)
)
VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["size", "k", "q"]), children, max_size=2)
    ),
    max_leaves=6,
)
DOCUMENTS = st.dictionaries(st.sampled_from([*EVERY_KEYWORD["properties"], "stray"]), VALUES, max_size=6)


@settings(max_examples=300, deadline=None)
@given(DOCUMENTS)
def test_no_problem_of_a_generated_document_dumps_a_value(document: dict[str, Any]) -> None:
    for problem in check_against_schema(document, EVERY_KEYWORD):
        assert problem.code in CODES, str(problem)
        value = document.get(str(problem.path[0])) if problem.path else document
        assert problem.path and not dumps_a_container(problem, value), str(problem)


def test_a_dpo_dataset_entry_is_explained_as_a_dpo_entry() -> None:
    """axolotl's examples/mistral/dpo/mistral-dpo-qlora.yml: rl: dpo, whose entry has DPO's fields and one
    key DPODataset drops (message_property_mappings). SFTDataset would call the DPO fields unknown."""
    entry = {
        "path": "olivermolenschot/alpaca_messages_dpo_test",
        "type": "chat_template.default",
        "field_messages": "conversation",
        "field_chosen": "chosen",
        "field_rejected": "rejected",
        "message_property_mappings": {"role": "role", "content": "content"},
    }
    [(path, code, _)] = shown(axolotl(rl="dpo", datasets=[entry]))
    assert (path, code) == ("datasets[0].message_property_mappings", "unknown-key")


@pytest.mark.parametrize(
    ("key", "written"), [("adam_epsilon", "1e-8"), ("weight_decay", "1e-2"), ("lora_dropout", "5e-2")]
)
def test_any_number_may_be_written_as_yaml_reads_an_exponent(key: str, written: str) -> None:
    """pydantic's lax mode turns the string YAML 1.1 makes of `1e-8` into a float, so axolotl accepts it."""
    value = yaml.safe_load(f"{key}: {written}")[key]
    assert isinstance(value, str) and axolotl(**{key: value}) == []
    assert shown(axolotl(**{key: "fast"})) == [(key, "schema-pattern", "expected a number, got 'fast'")]


@pytest.mark.parametrize(
    ("change", "accepted"),
    [
        # axolotl's own examples/llama-2/relora.yml: pydantic's lax mode reads false as 0.
        ({"jagged_restart_anneal_steps": False}, True),
        ({"lora_r": True}, True),  # read as 1
        ({"learning_rate": True}, True),  # read as 1.0, above 0
        ({"learning_rate": False}, False),  # read as 0.0: the tightening's bound refuses it
        ({"num_epochs": False}, False),
    ],
)
def test_a_boolean_where_a_number_belongs_is_read_as_pydantic_reads_it(change: dict, accepted: bool) -> None:
    problems = axolotl(**change)
    assert (problems == []) is accepted, shown(problems)
    if not accepted:  # the message offers what is expected, not the boolean axolotl would read as 0
        assert "expected a number above 0, got false" in problems[0].message
