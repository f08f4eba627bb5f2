"""The files people actually have: a BOM from a Windows editor, gzip, a JSON array instead of JSON Lines,
and ShareGPT or Alpaca records instead of chat. `data check` reads the first two as they are and says in
one message what the others are and how to convert them; `data convert --from sharegpt|alpaca` does it."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest
from mft_recipes_data.check import CheckOptions, check_files

from mft_recipes.schemas import load_schema
from tests.refusals import assert_refused

from .conftest import chat, data_cli
from .test_bad_inputs import files_in

VALID = chat("What is the capital of France?", "Paris.")
SECOND = chat("And of Italy?", "Rome.", system="Answer in one word.")
INVALID = chat("A question without an answer")
SHAREGPT = {
    "id": "abc",
    "conversations": [
        {"from": "system", "value": "Answer in one word."},
        {"from": "human", "value": "Capital of France?"},
        {"from": "gpt", "value": "Paris."},
        {"from": "human", "value": "And of Italy?"},
        {"from": "gpt", "value": "Rome."},
    ],
}
ALPACA = {"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour"}
ALPACA_NO_INPUT = {"instruction": "Name a primary colour.", "input": "", "output": "Red"}


# --- data check reads BOMs and gzip -------------------------------------------------------------------


def test_a_utf8_bom_at_the_start_is_accepted(jsonl: Callable[..., Path], tmp_path: Path) -> None:
    path = jsonl(b"\xef\xbb\xbf" + json.dumps(VALID).encode(), SECOND)
    result = data_cli("check", str(path), "--model", "v3")
    assert result.exit_code == 0, result.output
    assert "2 examples, 2 valid" in result.stdout
    clean = tmp_path / "clean.jsonl"
    check_files([path], CheckOptions(write_clean=clean))
    assert clean.read_bytes() == (json.dumps(VALID) + "\n" + json.dumps(SECOND) + "\n").encode()


@pytest.mark.parametrize("jobs", [1, 2])
def test_gzip_is_read_as_the_file_it_holds(jsonl: Callable[..., Path], tmp_path: Path, jobs: int) -> None:
    lines = [VALID, chat("x" * 5000, "long line"), INVALID, VALID, "", INVALID, SECOND] * 3
    plain = jsonl(*lines)
    packed = tmp_path / "data.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    expected = check_files(
        [plain], CheckOptions(jobs=1, chunk_bytes=64, write_clean=tmp_path / "plain-clean.jsonl")
    )
    report = check_files(
        [packed], CheckOptions(jobs=jobs, chunk_bytes=64, write_clean=tmp_path / "gz-clean.jsonl")
    )
    as_plain = json.dumps(report.as_json()["files"]).replace(str(packed), str(plain))
    assert json.loads(as_plain) == expected.as_json()["files"]
    assert report.files[0].size_bytes == plain.stat().st_size  # what it holds, not what it weighs
    assert (tmp_path / "gz-clean.jsonl").read_bytes() == (tmp_path / "plain-clean.jsonl").read_bytes()
    assert [(p.line, p.code) for p in report.problems][:2] == [(3, "E_LAST_ROLE"), (4, "W_DUPLICATE")]


def test_gzip_with_a_bom_and_big_enough_for_workers(jsonl: Callable[..., Path], tmp_path: Path) -> None:
    examples = [chat(f"question {number} " + "y" * 300, f"answer {number}") for number in range(400)]
    data = b"\xef\xbb\xbf" + b"".join(json.dumps(example).encode() + b"\n" for example in examples)
    packed = tmp_path / "big.jsonl.gz"
    packed.write_bytes(gzip.compress(data))
    seen: list[tuple[int, int]] = []
    report = check_files(
        [packed],
        CheckOptions(jobs=2, chunk_bytes=4096),
        progress=lambda done, total: seen.append((done, total)),
    )
    assert report.valid and report.examples == 400
    assert seen[-1][0] == seen[-1][1]


def test_a_damaged_gzip_file_is_invalid_input_named(tmp_path: Path) -> None:
    packed = tmp_path / "data.jsonl.gz"
    packed.write_bytes(gzip.compress((json.dumps(VALID) + "\n").encode() * 2000)[:-40])
    result = data_cli("check", str(packed))
    assert_refused(result, 1, f"{packed}: error: the gzip stream is damaged", "[E_GZIP]")
    jsonschema.validate(
        json.loads(data_cli("check", str(packed), "--json").stdout), load_schema("data-check")
    )


def test_the_installed_command_checks_a_gzip_file(tmp_path: Path) -> None:
    packed = tmp_path / "train.jsonl.gz"
    packed.write_bytes(gzip.compress((json.dumps(VALID) + "\n" + json.dumps(INVALID) + "\n").encode()))
    result = data_cli("check", str(packed), "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert [(p["line"], p["code"]) for p in report["files"][0]["problems"]] == [(2, "E_LAST_ROLE")]


# --- one message for a file in another format ----------------------------------------------------------


@pytest.mark.parametrize("indent", [None, 2], ids=["one line", "pretty-printed"])
def test_a_json_array_gets_one_message(tmp_path: Path, indent: int | None) -> None:
    path = tmp_path / "train.json"
    path.write_text(json.dumps([VALID, SECOND, INVALID], indent=indent))
    result = data_cli("check", str(path), "--json")
    assert result.exit_code == 1
    jsonschema.validate(json.loads(result.stdout), load_schema("data-check"))
    (problem,) = json.loads(result.stdout)["files"][0]["problems"]
    assert problem["code"] == "E_JSON_ARRAY" and problem["line"] is None
    assert "a JSON array, not JSON Lines" in problem["message"]
    assert "jq -c '.[]'" in problem["message"]
    text = data_cli("check", str(path))
    assert_refused(text, 1, f"{path}: error: the file is a JSON array")
    assert len(text.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("record", "name"), [(SHAREGPT, "ShareGPT"), (ALPACA, "Alpaca")], ids=["sharegpt", "alpaca"]
)
@pytest.mark.parametrize("container", ["jsonl", "json array"])
def test_sharegpt_and_alpaca_get_one_message_naming_the_converter(
    tmp_path: Path, record: dict, name: str, container: str
) -> None:
    path = tmp_path / "train.jsonl"
    if container == "jsonl":
        path.write_text((json.dumps(record) + "\n") * 5)
    else:
        path.write_text(json.dumps([record] * 5, indent=1))
    jsonschema.validate(json.loads(data_cli("check", str(path), "--json").stdout), load_schema("data-check"))
    result = data_cli("check", str(path))
    command = f"mft-recipes data convert {path} -o {path.with_name('train.chat.jsonl')} --from {name.lower()}"
    assert_refused(result, 1, f"{name} records", command)
    assert len(result.stderr.splitlines()) == 1
    for fmt in ("chat", "classifier"):
        (problem,) = check_files([path], CheckOptions(fmt=fmt)).problems
        assert problem.code == "E_OTHER_FORMAT"
    chat_with_a_stray_key = path.with_name("chat.jsonl")  # still checked line by line
    chat_with_a_stray_key.write_text(json.dumps({**VALID, **record}) + "\n" + json.dumps(INVALID) + "\n")
    codes = [problem.code for problem in check_files([chat_with_a_stray_key]).problems]
    assert codes[-1] == "E_LAST_ROLE" and "E_OTHER_FORMAT" not in codes


# --- data convert --from sharegpt|alpaca ----------------------------------------------------------------


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_sharegpt_becomes_chat_that_passes_the_check(tmp_path: Path) -> None:
    source = tmp_path / "sharegpt.jsonl"
    starts_with_gpt = {"conversations": [{"from": "gpt", "value": "Hi"}, {"from": "human", "value": "Hello"}]}
    tool = {"conversations": [{"from": "human", "value": "x"}, {"from": "function_call", "value": "{}"}]}
    user_assistant = {
        "conversations": [{"from": "user", "value": "Hi"}, {"from": "assistant", "value": "Yo"}]
    }
    source.write_text(
        "\n".join(json.dumps(line) for line in [SHAREGPT, starts_with_gpt, tool, {"id": 1}, user_assistant])
        + "\n"
    )
    output = tmp_path / "chat.jsonl"
    result = data_cli("convert", str(source), "-o", str(output), "--from", "sharegpt")
    assert result.exit_code == 0, result.output
    assert read_jsonl(output) == [
        chat("Capital of France?", "Paris.", "And of Italy?", "Rome.", system="Answer in one word."),
        chat("Hi", "Yo"),
    ]
    assert "row 2: left out: " in result.stderr and "E_ROLE_ORDER" in result.stderr
    assert "row 3: left out: " in result.stderr and "'function_call'" in result.stderr
    assert "row 4: left out: no 'conversations' list" in result.stderr
    assert "wrote 2 of 5 rows" in result.stdout
    assert check_files([output]).valid


def test_alpaca_becomes_chat_with_the_input_after_the_instruction(tmp_path: Path) -> None:
    source = tmp_path / "alpaca.json"  # Alpaca's own file is a JSON array
    source.write_text(json.dumps([ALPACA, ALPACA_NO_INPUT, {"instruction": "No output"}], indent=4))
    output = tmp_path / "chat.jsonl"
    result = data_cli(
        "convert", str(source), "-o", str(output), "--from", "alpaca", "--system", "You are helpful."
    )
    assert result.exit_code == 0, result.output
    assert read_jsonl(output) == [
        chat("Translate to French.\n\nGood morning", "Bonjour", system="You are helpful."),
        chat("Name a primary colour.", "Red", system="You are helpful."),
    ]
    assert "row 3: left out: no 'output'" in result.stderr
    assert check_files([output]).valid


def test_from_takes_no_templates(tmp_path: Path) -> None:
    source = tmp_path / "alpaca.jsonl"
    source.write_text(json.dumps(ALPACA) + "\n")
    before = files_in(tmp_path)
    result = data_cli(
        "convert", str(source), "-o", str(tmp_path / "o.jsonl"), "--from", "alpaca", "--user", "{x}"
    )
    assert_refused(result, 2, "--from alpaca", "--user")
    result = data_cli(
        "convert", str(source), "-o", str(tmp_path / "o.jsonl"), "--from", "alpaca", "--to", "classifier"
    )
    assert_refused(result, 2, "--from alpaca", "--to classifier")
    assert files_in(tmp_path) == before


def test_a_broken_json_array_names_where(tmp_path: Path) -> None:
    source = tmp_path / "alpaca.json"
    source.write_text('[\n{"instruction": "a", "output": "b"},\n{"instruction": "c", "output": \n]\n')
    result = data_cli("convert", str(source), "-o", str(tmp_path / "o.jsonl"), "--from", "alpaca")
    assert_refused(result, 1, f"{source}:4", "JSON")
    assert not (tmp_path / "o.jsonl").exists()


def test_convert_and_split_read_gzip(tmp_path: Path) -> None:
    source = tmp_path / "alpaca.jsonl.gz"
    source.write_bytes(gzip.compress(b"".join(json.dumps(ALPACA).encode() + b"\n" for _ in range(10))))
    output = tmp_path / "chat.jsonl"
    result = data_cli("convert", str(source), "-o", str(output), "--from", "alpaca")
    assert result.exit_code == 0, result.output
    assert len(read_jsonl(output)) == 10
    packed = tmp_path / "chat-packed.jsonl.gz"
    packed.write_bytes(gzip.compress(output.read_bytes()))
    train, validation = tmp_path / "t.jsonl", tmp_path / "v.jsonl"
    result = data_cli("split", str(packed), "--train", str(train), "--validation", str(validation))
    assert result.exit_code == 0, result.output
    assert sorted(read_jsonl(train) + read_jsonl(validation), key=json.dumps) == read_jsonl(output)
