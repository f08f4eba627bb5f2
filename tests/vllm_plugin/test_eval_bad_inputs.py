"""`mft-recipes eval` keeps the exit-code contract (tests/host/test_bad_inputs.py) where vLLM is installed:
the engine's context sized from the data and the model, an engine that does not start said in one line,
and every refusal made before a file is written. The cases that need no vLLM are in the host battery.

A tiny model whose context is 512 tokens stands for a model shorter than eval's old fixed 2048 (vLLM
refused to start on it, with a traceback).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conversations import reference_prompt
from tests.refusals import assert_refused, mft, snapshot
from tests.vllm_plugin.reference import write_jsonl

pytestmark = pytest.mark.vllm

CONTEXT = 512
MAX_TOKENS = 12
QUICK = ["--max-tokens", str(MAX_TOKENS), "--latency-requests", "0", "--dtype", "float32", "--enforce-eager"]
QUICK += ["--kv-cache-gib", "0.25"]


def chat(question: str, answer: str = "Fine.") -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}


@pytest.fixture(scope="module")
def short_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("vllm")
    from tests.tiny_models import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("short-model"), max_position_embeddings=CONTEXT)


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    """A user's folder: test sets good and bad, a label file with no label, folders and a file."""
    write_jsonl(tmp_path / "test.jsonl", [chat(f"What is {i} plus {i}?", f"{2 * i}.") for i in range(4)])
    long = " ".join(["word"] * (2 * CONTEXT))
    write_jsonl(tmp_path / "long.jsonl", [chat("Hi?"), chat(f"Summarise: {long}")])
    (tmp_path / "broken.jsonl").write_text('{"messages": [}\n')
    (tmp_path / "labels.txt").write_text("\n\n")
    (tmp_path / "notes.txt").write_text("a file, not a folder\n")
    (tmp_path / "not-a-model").mkdir()
    (tmp_path / "earlier").mkdir()
    (tmp_path / "earlier" / "run.json").write_text("{}\n")
    return tmp_path


def eval_refused(inputs: Path, args: list[str], code: int, *needles: str) -> str:
    """Run eval with `args`; it must exit `code` with each needle in one error line, and write nothing."""
    before = snapshot(inputs)
    result = mft("eval", *(arg.replace("{d}", str(inputs)) for arg in args))
    assert_refused(result, code, *(needle.replace("{d}", str(inputs)) for needle in needles))
    assert snapshot(inputs) == before, "a refused eval makes, changes or leaves no file"
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("mft-recipes: error:")]
    return line


def test_the_context_is_sized_from_the_data_within_a_short_model(short_model: Path, inputs: Path) -> None:
    """No --max-model-len: the engine gets the longest prompt plus --max-tokens, not a fixed 2048."""
    out = inputs / "eval"
    result = mft(
        "eval", "--model", str(short_model), "--data", str(inputs / "test.jsonl"), "-o", str(out), *QUICK
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    rows = [json.loads(line) for line in (inputs / "test.jsonl").read_text().splitlines()]
    longest = max(len(reference_prompt("v3", row["messages"][:-1])) for row in rows)
    assert metrics["settings"]["max_model_len"] == longest + MAX_TOKENS
    assert metrics["models"]["base"]["examples"] == 4


def test_a_prompt_the_model_cannot_hold_is_refused_naming_it(short_model: Path, inputs: Path) -> None:
    line = eval_refused(
        inputs,
        ["--model", str(short_model), "--data", "{d}/long.jsonl", "-o", "{d}/out", *QUICK],
        1,
        "the longest prompt ({d}/long.jsonl:2, ",
        f"{short_model} holds {CONTEXT} (max_position_embeddings in {short_model}/config.json)",
        "lower --max-tokens",
    )
    assert "2048" not in line


@pytest.mark.parametrize(
    ("length", "needles"),
    [
        ("2048", ["--max-model-len 2048:", f"holds {CONTEXT} tokens", "leave it out"]),
        (
            "16",
            [
                "--max-model-len 16 is too short",
                "the longest prompt ({d}/test.jsonl:",
                "tokens) and its answer need",
            ],
        ),
    ],
    ids=["beyond the model", "too short for the data"],
)
def test_a_max_model_len_that_cannot_work_is_a_usage_error(
    short_model: Path, inputs: Path, length: str, needles: list[str]
) -> None:
    args = ["--model", str(short_model), "--data", "{d}/test.jsonl", "-o", "{d}/out", *QUICK]
    eval_refused(inputs, [*args, "--max-model-len", length], 2, *needles)


def test_an_engine_that_does_not_start_is_one_line_with_the_cause(short_model: Path, inputs: Path) -> None:
    """A KV cache too small for one sequence: vLLM refuses to start; eval says so in one line."""
    args = ["--model", str(short_model), "--data", "{d}/test.jsonl", "-o", "{d}/out", *QUICK]
    line = eval_refused(
        inputs, [*args, "--kv-cache-gib", "0.000001"], 1, f"vLLM could not start {short_model}: "
    )
    assert "Error: " in line  # the cause, by its type and message


@pytest.mark.parametrize(
    ("args", "code", "needles"),
    [
        (["--model", "{d}/missing-model", "--data", "{d}/test.jsonl"], 2, ["--model {d}/missing-model: no such folder"]),
        (["--model", "{d}/notes.txt", "--data", "{d}/test.jsonl"], 2, ["--model {d}/notes.txt: a file"]),
        (["--model", "{d}/not-a-model", "--data", "{d}/test.jsonl"], 1, ["--model {d}/not-a-model: no config.json"]),
        (["--data", "{d}/broken.jsonl"], 1, ["{d}/broken.jsonl:1: not JSON"]),
        (["--data", "{d}/test.jsonl", "--labels", "{d}/labels.txt", "--task", "classification"], 1,
         ["{d}/labels.txt: no labels"]),
        (["--data", "{d}/test.jsonl", "--adapter", "{d}/not-a-model"], 1,
         ["--adapter {d}/not-a-model: neither a LoRA adapter"]),
        (["--data", "{d}/test.jsonl", "-o", "{d}/earlier"], 2, ["{d}/earlier holds an earlier run", "--resume"]),
        (["--data", "{d}/test.jsonl", "-o", "{d}/notes.txt/out"], 2, ["-o {d}/notes.txt/out", "is a file, not a folder"]),
        (["--data", "{d}/test.jsonl", "-o", "/proc/x"], 2, ["-o /proc/x: cannot write the results there", "/proc"]),
    ],
    ids=[
        "a missing model folder",
        "a file for the model",
        "a folder with no model",
        "data that is not JSON",
        "a label file with no label",
        "an adapter folder with neither",
        "an output folder holding another run",
        "an output under a file",
        "an output where no folder can be made",
    ],
)  # fmt: skip
def test_a_bad_input_is_refused_by_the_contract(
    short_model: Path, inputs: Path, args: list[str], code: int, needles: list[str]
) -> None:
    model = [] if "--model" in args else ["--model", str(short_model)]
    output = [] if "-o" in args else ["-o", "{d}/out"]
    eval_refused(inputs, [*model, *args, *output, *QUICK], code, *needles)
