"""Whatever the input, the checker ends with a report: arbitrary bytes, arbitrary JSON, and arbitrary
conversations. And when it calls a conversation valid, mistral-common agrees: it encodes it, to the same
number of tokens."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from mft_recipes_data.check import check_files

from .test_rules import TOOLS
from .test_tokens import reference_count

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
roles = st.sampled_from(["system", "user", "assistant", "tool", "bot"])
ids = st.sampled_from(["a1B2c3D4e", "Z9y8X7w6V", "call_1", None])
names = st.sampled_from(["get_weather", "get_time", "bad name"])
tool_calls = st.lists(
    st.fixed_dictionaries(
        {
            "id": ids,
            "type": st.just("function"),
            "function": st.fixed_dictionaries(
                {"name": names, "arguments": st.sampled_from(['{"a": 1}', "{}", "x"])}
            ),
        }
    ),
    max_size=2,
)
message = st.fixed_dictionaries(
    {"role": roles},
    optional={
        "content": st.none() | st.text(max_size=30) | st.just([{"type": "text", "text": "hi"}]),
        "tool_calls": tool_calls,
        "tool_call_id": ids,
        "weight": st.sampled_from([0, 1, 0.5, True]),
    },
)
conversation = st.fixed_dictionaries(
    {"messages": st.lists(message, max_size=6)},
    optional={
        "tools": st.just([{"type": "function", "function": {"name": "get_weather", "parameters": {}}}])
    },
)


@st.composite
def mostly_valid_conversations(draw: st.DrawFn) -> dict[str, Any]:
    """Conversations built to the rules (system prompt, turns, tool calls with results, weights), then
    sometimes broken in one place, so that both outcomes are common."""
    text = st.text(min_size=1, max_size=40).filter(str.strip)
    messages: list[dict[str, Any]] = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(text)})
    for turn in range(draw(st.integers(1, 3))):
        messages.append({"role": "user", "content": draw(text)})
        if draw(st.booleans()):
            call_id = f"call{turn}abcd"
            arguments = draw(st.sampled_from(['{"city": "Paris"}', "{}", {"city": "Rome"}]))
            messages.append(
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": call_id,
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": arguments},
                        }
                    ],
                }
            )
            messages.append({"role": "tool", "tool_call_id": call_id, "content": draw(text)})
        answer: dict[str, Any] = {"role": "assistant", "content": draw(text)}
        if draw(st.booleans()):
            answer["weight"] = draw(st.sampled_from([0, 1]))
        messages.append(answer)
    example: dict[str, Any] = {"messages": messages, "tools": TOOLS}
    if draw(st.integers(0, 3)) == 0:
        index = draw(st.integers(0, len(messages) - 1))
        messages[index] = draw(message)
    return example


def check_lines(tmp_path: Path, data: bytes, fmt: str = "chat", model: str = "v3") -> Any:
    path = tmp_path / "data.jsonl"
    path.write_bytes(data)
    report = check_files([path], fmt=fmt, model=model, jobs=1, chunk_bytes=256)
    lines = data.split(b"\n") if data else []
    if data.endswith(b"\n"):
        lines.pop()
    assert report.examples + report.files[0].blank_lines == len(lines)
    assert report.examples == report.valid_examples + report.files[0].invalid_examples
    assert report.valid == (report.files[0].invalid_examples == 0 and report.examples > 0)
    json.dumps(report.as_json())
    return report


@pytest.mark.parametrize("fmt", ["chat", "classifier"])
@SETTINGS
@given(data=st.binary(max_size=600))
def test_arbitrary_bytes_end_with_a_report(fmt: str, data: bytes, tmp_path: Path) -> None:
    check_lines(tmp_path, data, fmt)


@pytest.mark.parametrize("fmt", ["chat", "classifier"])
@SETTINGS
@given(values=st.lists(json_values, max_size=5))
def test_arbitrary_json_ends_with_a_report(fmt: str, values: list[Any], tmp_path: Path) -> None:
    lines = [json.dumps(value) for value in values]
    report = check_lines(tmp_path, "\n".join(lines).encode(), fmt)
    assert report.examples == sum(1 for line in lines if line.strip())


@pytest.mark.parametrize("model", ["v1", "v3"])
@SETTINGS
@given(example=conversation | mostly_valid_conversations())
def test_a_conversation_called_valid_is_one_mistral_common_encodes(
    model: str, example: dict[str, Any], tmp_path: Path
) -> None:
    report = check_lines(tmp_path, json.dumps(example).encode() + b"\n", model=model)
    event("valid" if report.valid_examples else "invalid")
    if report.valid_examples:
        assert report.token_counts() == [reference_count(model, example)]
