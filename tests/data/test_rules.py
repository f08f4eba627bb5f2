"""Every rule of `data check`: a file that breaks it gets the rule's code on the right line (and, for an
error, makes the check fail), and a file that keeps it does not."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mft_recipes_data.check import CheckOptions, check_files
from mft_recipes_data.rules import CODES

from mft_recipes.schemas import load_schema

from .conftest import Line, chat

USER = {"role": "user", "content": "What is the weather in Paris?"}
ANSWER = {"role": "assistant", "content": "Sunny, 21 °C."}
CALL = {
    "id": "a1B2c3D4e",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
RESULT = {"role": "tool", "tool_call_id": "a1B2c3D4e", "content": '{"temperature": 21}'}


def calling(
    call: dict[str, Any] = CALL,
    *,
    tools: Any = TOOLS,  # a list, or a wrong shape under test
    result: dict[str, Any] | None = RESULT,
    content: str | None = None,
) -> dict[str, Any]:
    """A conversation with one tool call, its result and the final answer."""
    assistant: dict[str, Any] = {"role": "assistant", "tool_calls": [call]}
    if content is not None:
        assistant["content"] = content
    messages = [USER, assistant, *([result] if result else []), ANSWER]
    return {"messages": messages, "tools": tools}


def messages(*items: Any) -> dict[str, Any]:
    return {"messages": list(items)}


# code: (lines that break the rule, lines that keep it, check_files options)
CASES: dict[str, tuple[list[Line], list[Line], dict[str, Any]]] = {
    "E_ENCODING": ([b'{"messages": "caf\xe9"}'], [chat("café?", "Oui.")], {}),
    "E_JSON": (['{"messages": [{"role": "user", "content": "hi"}'], [chat("hi", "hello")], {}),
    "E_NOT_OBJECT": ([[chat("hi", "hello")]], [chat("hi", "hello")], {}),
    "E_NO_MESSAGES": ([{"messages": []}, {"conversation": []}], [chat("hi", "hello")], {}),
    "E_MESSAGE_NOT_OBJECT": ([messages("hi", ANSWER)], [messages(USER, ANSWER)], {}),
    "E_ROLE": ([messages({"role": "human", "content": "hi"}, ANSWER)], [messages(USER, ANSWER)], {}),
    "E_SYSTEM_POSITION": (
        [messages(USER, {"role": "system", "content": "Be brief."}, ANSWER)],
        [messages({"role": "system", "content": "Be brief."}, USER, ANSWER)],
        {},
    ),
    "E_SYSTEM_MULTIPLE": (
        [
            messages(
                {"role": "system", "content": "Be brief."},
                {"role": "system", "content": "Be kind."},
                USER,
                ANSWER,
            )
        ],
        [chat("hi", "hello", system="Be brief.")],
        {},
    ),
    "E_ROLE_ORDER": (
        [
            messages(USER, USER, ANSWER),
            messages(ANSWER),
            messages(USER, ANSWER, ANSWER),
            messages(USER, RESULT, ANSWER),
        ],
        [chat("hi", "hello", "how are you?", "fine")],
        {},
    ),
    "E_LAST_ROLE": ([chat("hi", "hello", "bye")], [chat("hi", "hello", "bye", "bye!")], {}),
    "E_CONTENT_MISSING": (
        [messages({"role": "user"}, ANSWER), messages(USER, {"role": "assistant"})],
        [messages(USER, ANSWER)],
        {},
    ),
    "E_CONTENT_TYPE": (
        [messages({"role": "user", "content": [{"type": "text", "text": "hi"}]}, ANSWER)],
        [messages(USER, ANSWER)],
        {},
    ),
    "E_CONTENT_EMPTY": ([chat(" \n ", "hello")], [chat("hi", "hello")], {}),
    "E_EMPTY_ASSISTANT": ([chat("hi", ""), chat("hi", " \n\t ")], [chat("hi", ".")], {}),
    "E_CONTENT_AND_TOOL_CALLS": ([calling(content="Let me look.")], [calling(content=""), calling()], {}),
    "E_TOOL_CALL": (
        [
            calling({"id": "a1B2c3D4e", "function": {"name": "get weather", "arguments": "{}"}}),
            calling({"id": "a1B2c3D4e", "function": {"name": "get_weather"}}),
        ],
        [calling()],
        {},
    ),
    "E_TOOL_CALL_ID": (
        [
            calling({**CALL, "id": "call_1"}, result={**RESULT, "tool_call_id": "call_1"}),
            calling(result={**RESULT, "tool_call_id": None}),
        ],
        [calling()],
        {},
    ),
    "E_TOOL_RESULT_MISSING": ([calling(result=None)], [calling()], {}),
    "E_TOOL_CALL_ID_UNKNOWN": ([calling(result={**RESULT, "tool_call_id": "zzzzzzzzz"})], [calling()], {}),
    "E_TOOLS": ([calling(tools=[{"type": "function"}]), calling(tools={"get_weather": {}})], [calling()], {}),
    "E_TOOL_UNDEFINED": (
        [calling(tools=[{"type": "function", "function": {"name": "get_time"}}]), {**calling(), "tools": []}],
        [calling()],
        {},
    ),
    "E_WEIGHT": (
        [
            messages(USER, {**ANSWER, "weight": 0.5}),
            messages({**USER, "weight": 1}, ANSWER),
            messages(USER, {**ANSWER, "weight": True}),
        ],
        [messages(USER, {**ANSWER, "weight": 0}, USER, {**ANSWER, "weight": 1})],
        {},
    ),
    "E_TEXT": (
        [
            {"labels": {"topic": "weather"}},
            {"text": " ", "labels": {"topic": "weather"}},
            {"text": "hi", "messages": [USER], "labels": {"topic": "weather"}},
        ],
        [
            {"text": "Is it sunny?", "labels": {"topic": "weather"}},
            {"messages": [USER], "labels": {"topic": "weather"}},
        ],
        {"fmt": "classifier"},
    ),
    "E_LABELS": (
        [{"text": "Is it sunny?"}, {"text": "Is it sunny?", "labels": []}],
        [{"text": "Is it sunny?", "labels": {"topic": "weather"}}],
        {"fmt": "classifier"},
    ),
    "E_LABEL_VALUE": (
        [{"text": "Is it sunny?", "labels": {"topic": 3}}, {"text": "Is it sunny?", "labels": {"topic": []}}],
        [{"text": "Is it sunny?", "labels": {"topic": ["weather", "travel"]}}],
        {"fmt": "classifier"},
    ),
    # Tool calls have no tokens in the v1 tokenizer (Mixtral 8x7B): mistral-common refuses to encode them.
    "E_TOKENIZER": ([calling()], [chat("hi", "hello")], {"model": "Mixtral-8x7B-v0.1"}),
    "W_BLANK_LINE": ([chat("hi", "hello"), "", "  "], [chat("hi", "hello")], {}),
    "W_UNKNOWN_KEY": (
        [{**chat("hi", "hello"), "id": 7}, messages({**USER, "name": "ann"}, ANSWER)],
        [chat("hi", "hello")],
        {},
    ),
    "W_NO_TRAINED_TURN": (
        [messages(USER, {**ANSWER, "weight": 0})],
        [messages(USER, {**ANSWER, "weight": 1})],
        {},
    ),
    "W_DUPLICATE": (
        [chat("hi", "hello"), chat("hi", "hello")],
        [chat("hi", "hello"), chat("hi", "hello!")],
        {},
    ),
    "W_TOO_LONG": (
        [chat("word " * 200, "ok")],
        [chat("word " * 20, "ok")],
        {"recipe": "mistral-7b-qlora", "overrides": {"sequence_len": 128}},
    ),
    # Ten examples of the leaf: fewer would be W_RARE_LEAF (tests/data/test_classifier_data.py).
    "E_ANSWER_PATH": (
        [chat("Aria Buds", "Electronics > Audio"), chat("Bolt", "Home>Tools>Drills")],
        [chat(f"Aria Buds {n}", "Electronics > Audio > Earbuds") for n in range(10)],
        {"recipe": "mistral-7b-classifier"},
    ),
}


def test_every_code_has_a_case() -> None:
    size_codes = {"E_FILE_TOO_LARGE", "W_FILE_TOO_LARGE", "E_EMPTY_FILE"}  # tested below
    file_codes = {"E_JSON_ARRAY", "E_OTHER_FORMAT", "E_GZIP"}  # tested in test_input_formats.py
    file_codes.add("E_NOTHING_TRAINS")  # tested in test_check.py
    file_codes |= {"W_RARE_LEAF", "W_UNSEEN_LEAF"}  # tested in test_classifier_data.py
    assert set(CASES) | size_codes | file_codes == set(CODES)


def test_the_json_schema_lists_every_code() -> None:
    assert load_schema("data-check")["$defs"]["code"]["enum"] == list(CODES)


@pytest.mark.parametrize("code", list(CASES))
def test_breaking_a_rule_is_reported_with_its_code_and_line(code: str, jsonl: Callable[..., Path]) -> None:
    bad, _, options = CASES[code]
    padding: Line = chat("a valid first line", "so that problems must name their own line")
    if options.get("fmt") == "classifier":
        padding = {"text": "a valid first line", "labels": {"topic": "padding"}}
    if options.get("recipe") == "mistral-7b-classifier":
        padding = chat("a valid first line", "Padding > Padding > Padding")
    report = check_files([jsonl(padding, *bad)], CheckOptions(jobs=1, **options))
    # A problem without a line (None) fails the comparisons below.
    lines = sorted({problem.line for problem in report.problems if problem.code == code})  # type: ignore[type-var]
    if code == "W_BLANK_LINE":
        assert lines == [3, 4]
    elif code == "W_DUPLICATE":
        assert lines == [3]
    else:
        assert lines == list(range(2, len(bad) + 2)), [str(problem) for problem in report.problems]
    assert report.valid is (CODES[code][0] == "warning")
    for problem in report.problems:
        assert problem.message and problem.file and problem.severity == CODES[problem.code][0]


@pytest.mark.parametrize("code", list(CASES))
def test_keeping_a_rule_is_not_reported(code: str, jsonl: Callable[..., Path]) -> None:
    _, good, options = CASES[code]
    report = check_files([jsonl(*good)], CheckOptions(jobs=1, **options))
    assert report.problems == []
    assert report.valid and report.valid_examples == len(good)


def test_an_invalid_example_is_not_counted_but_the_others_are(jsonl: Callable[..., Path]) -> None:
    report = check_files(
        [jsonl(chat("hi", "hello"), chat("hi"), chat("bye", "ciao"))], CheckOptions(model="v3", jobs=1)
    )
    assert (report.examples, report.valid_examples, report.files[0].invalid_examples) == (3, 2, 1)
    assert len(report.token_counts()) == 2
    assert not report.valid


@pytest.mark.parametrize("platform", [True, False])
def test_size_limits(platform: bool, jsonl: Callable[..., Path]) -> None:
    """La Plateforme takes at most 1 MB of validation data: over it is an error when checking for La
    Plateforme, a warning otherwise; the same file as training data (limit 512 MB) is fine."""
    examples = [chat(f"question {number} " + "x" * 500, "answer") for number in range(2000)]
    path = jsonl(*examples)
    assert path.stat().st_size > 1_000_000
    as_validation = check_files([path], CheckOptions(role="validation", platform=platform, model="v3"))
    code = "E_FILE_TOO_LARGE" if platform else "W_FILE_TOO_LARGE"
    assert [problem.code for problem in as_validation.problems] == [code]
    assert "1,000,000-byte limit for a validation file" in as_validation.problems[0].message
    assert as_validation.valid is not platform
    assert check_files([path], CheckOptions(role="train", platform=platform, model="v3")).problems == []


def test_a_file_without_examples_is_invalid(jsonl: Callable[..., Path]) -> None:
    for path in (jsonl(), jsonl("", " ")):
        report = check_files([path])
        assert [problem.code for problem in report.problems if problem.severity == "error"] == [
            "E_EMPTY_FILE"
        ]
        assert not report.valid
    assert check_files([jsonl(chat("hi", "hello"))]).valid
