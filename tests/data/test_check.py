"""`data check` as people use it: the clean copy, recipes' sequence length and steps, classifier labels,
line numbers across chunk boundaries, the exit codes, and JSON output that matches its schema."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest
from mft_recipes_data.check import CheckError, CheckOptions, check_files
from mft_recipes_data.training import TrainingSettings, axolotl_fate

from mft_recipes.schemas import load_schema

from .conftest import chat, data_cli
from .test_tokens import reference_count

VALID = chat("What is the capital of France?", "Paris.")
SECOND = chat("And of Italy?", "Rome.", system="Answer in one word.")
INVALID = chat("A question without an answer")


def test_write_clean_keeps_the_valid_examples_once_and_never_touches_the_input(
    jsonl: Callable[..., Path], tmp_path: Path
) -> None:
    source = jsonl(VALID, "{broken", INVALID, "", VALID, SECOND, b"  " + json.dumps(SECOND).encode() + b"\r")
    before = source.read_bytes()
    clean = tmp_path / "clean.jsonl"
    result = data_cli("check", str(source), "--model", "v3", "--write-clean", str(clean))
    assert result.exit_code == 1
    assert source.read_bytes() == before
    assert [json.loads(line) for line in clean.read_text().splitlines()] == [VALID, SECOND]
    assert "wrote 2 examples" in result.stdout
    assert (
        "2 W_DUPLICATE" in result.stdout and "1 E_JSON" in result.stdout and "1 E_LAST_ROLE" in result.stdout
    )
    again = data_cli("check", str(clean), "--model", "v3")
    assert again.exit_code == 0, again.output
    assert check_files([clean]).problems == []


def test_write_clean_refuses_to_overwrite_the_input(jsonl: Callable[..., Path]) -> None:
    source = jsonl(VALID)
    with pytest.raises(CheckError, match="is the input"):
        check_files([source], CheckOptions(write_clean=source))
    result = data_cli("check", str(source), "--write-clean", str(source))
    assert result.exit_code == 2
    assert source.read_bytes() == json.dumps(VALID).encode() + b"\n"


def test_a_recipe_gives_sequence_len_tokens_and_steps_per_epoch(jsonl: Callable[..., Path]) -> None:
    """mistral-7b-qlora packs samples (micro_batch_size 2, gradient_accumulation_steps 4, one GPU, 2 epochs,
    2% held out); with sequence_len=128, the long example is dropped as axolotl drops it."""
    short = [chat(f"Question number {number}?", f"Answer number {number}.") for number in range(40)]
    long = chat("word " * 300, "ok")
    report = check_files(
        [jsonl(*short, long)], CheckOptions(recipe="mistral-7b-qlora", overrides={"sequence_len": 128})
    )
    kept = [reference_count("v3", example) for example in short]
    assert reference_count("v3", long) > 128 >= max(kept)
    epoch = report.epoch
    assert epoch is not None and report.training is not None
    assert epoch.over_sequence_len == 1
    assert epoch.tokens_per_epoch == round(sum(kept) * 0.98)
    assert epoch.steps_per_epoch == math.ceil(round(sum(kept) * 0.98) / (128 * 2 * 4))
    assert epoch.total_steps == 2 * epoch.steps_per_epoch
    assert [problem.line for problem in report.problems if problem.code == "W_TOO_LONG"] == [41]
    assert report.valid  # too long is a warning: the trainer copes


def test_examples_that_train_nothing_are_dropped_as_axolotl_drops_them_with_sample_packing(
    jsonl: Callable[..., Path],
) -> None:
    """axolotl drops rows without a trained token when it packs samples (utils/trainer.py,
    process_datasets_for_packing), not otherwise: mistral-7b-lora packs, mixtral-8x22b does not."""
    trained = chat("Question?", "Answer.")
    nothing = {"messages": [*trained["messages"][:1], {"role": "assistant", "content": "Skip.", "weight": 0}]}
    path = jsonl(trained, nothing)
    packed = check_files([path], CheckOptions(recipe="mistral-7b-lora", overrides={"val_set_size": 0})).epoch
    unpacked = check_files([path], CheckOptions(recipe="mixtral-8x22b", overrides={"val_set_size": 0})).epoch
    assert packed is not None and unpacked is not None
    assert (packed.without_trained_tokens, packed.examples_per_epoch) == (1, 1)
    assert (unpacked.without_trained_tokens, unpacked.examples_per_epoch) == (0, 2)


@pytest.mark.parametrize(
    ("strategy", "packing", "tokens", "trained_from", "fate"),
    [
        ("drop", True, 100, 10, "kept"),
        ("drop", True, 101, 10, "dropped"),
        ("drop", False, 101, 0, "dropped"),
        ("raise", True, 101, 10, "raises"),
        ("truncate", True, 101, 10, "truncated"),
        ("truncate", True, 101, 100, "untrained"),  # the first trained token is cut off
        ("truncate", False, 101, 100, "truncated"),
        ("drop", True, 50, 0, "untrained"),
        ("drop", False, 50, 0, "kept"),
    ],
)
def test_axolotl_fate_of_an_example(
    strategy: str, packing: bool, tokens: int, trained_from: int, fate: str
) -> None:
    settings = TrainingSettings(
        "r", "m", "axolotl", sequence_len=100, sample_packing=packing, excess_length_strategy=strategy
    )
    assert axolotl_fate(settings, tokens, trained_from) == fate


def test_a_platform_classifier_recipe_checks_classifier_data_with_its_limits(
    jsonl: Callable[..., Path],
) -> None:
    examples = [{"text": f"product {n}", "labels": {"level1": "A" if n % 3 else "B"}} for n in range(9)]
    report = check_files([jsonl(*examples)], CheckOptions(recipe="platform-classifier"))
    assert report.format == "classifier" and report.training is not None and report.training.platform
    assert report.files[0].labels == {"level1": {"A": 6, "B": 3}}
    assert report.valid


def test_classifier_labels_are_counted_per_target(jsonl: Callable[..., Path]) -> None:
    lines = [
        {"text": "Wireless headphones", "labels": {"category": "audio", "tags": ["wireless", "sale"]}},
        {"text": "Drill", "labels": {"category": "tools", "tags": ["sale"]}},
        {"messages": [{"role": "user", "content": "Bluetooth speaker"}], "labels": {"category": "audio"}},
        {"text": "No labels"},
    ]
    result = data_cli("check", str(jsonl(*lines)), "--format", "classifier", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["files"][0]["labels"] == {
        "category": {"audio": 2, "tools": 1},
        "tags": {"sale": 2, "wireless": 1},
    }
    assert report["files"][0]["problem_counts"] == {"E_LABELS": 1}


def test_line_numbers_hold_across_chunks_and_lines_longer_than_a_chunk(jsonl: Callable[..., Path]) -> None:
    lines = [VALID, chat("x" * 5000, "long line"), INVALID, VALID, "", INVALID]
    report = check_files([jsonl(*lines)], CheckOptions(jobs=1, chunk_bytes=64))
    assert [(p.line, p.code) for p in report.problems] == [
        (3, "E_LAST_ROLE"),
        (4, "W_DUPLICATE"),
        (5, "W_BLANK_LINE"),
        (6, "E_LAST_ROLE"),
    ]
    assert report.examples == 5


def test_workers_read_their_chunks_at_the_right_places(jsonl: Callable[..., Path], tmp_path: Path) -> None:
    """Workers read their chunk's bytes from the file themselves (by offset): line numbers, duplicates,
    the long line and the clean copy come out as one process finds them."""
    lines = [VALID, chat("x" * 5000, "long line"), INVALID, VALID, "", INVALID, SECOND] * 3
    path = jsonl(*lines)
    serial = check_files([path], CheckOptions(jobs=1, chunk_bytes=64, write_clean=tmp_path / "serial.jsonl"))
    parallel = check_files(
        [path], CheckOptions(jobs=2, chunk_bytes=64, write_clean=tmp_path / "parallel.jsonl")
    )
    assert parallel.as_json()["files"] == serial.as_json()["files"]
    assert [(p.line, p.code) for p in parallel.problems][:4] == [
        (3, "E_LAST_ROLE"),
        (4, "W_DUPLICATE"),
        (5, "W_BLANK_LINE"),
        (6, "E_LAST_ROLE"),
    ]
    assert (tmp_path / "parallel.jsonl").read_bytes() == (tmp_path / "serial.jsonl").read_bytes()
    assert len((tmp_path / "parallel.jsonl").read_text().splitlines()) == 3


def test_a_file_that_shrinks_while_workers_read_it_is_reported(jsonl: Callable[..., Path]) -> None:
    from mft_recipes_data.chunks import FileChangedError, check_chunk_in_file, read_chunks

    path = jsonl(VALID, SECOND)
    chunk = next(read_chunks(str(path), 0, "chat", "v3"))
    path.write_bytes(chunk.data[:10])
    with pytest.raises(FileChangedError, match="changed while it was being checked"):
        check_chunk_in_file(chunk, len(chunk.data))


def test_problems_beyond_the_limit_are_counted_not_listed(jsonl: Callable[..., Path]) -> None:
    report = check_files([jsonl(*[INVALID] * 50)], CheckOptions(max_problems=10, jobs=1))
    assert len(report.problems) == 10
    assert report.files[0].problem_counts["E_LAST_ROLE"] == 50
    assert report.files[0].problems_omitted == 40


@pytest.fixture
def many_problems(jsonl: Callable[..., Path]) -> Path:
    """4,000 lines (300 KB), each with one problem but the first: invalid examples (found by the workers)
    between repeated valid ones (duplicates, found when the results are put together)."""
    return jsonl(*[INVALID if number % 2 else VALID for number in range(4000)])


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_problems_listed_are_the_files_first_whatever_the_chunking(
    many_problems: Path, jobs: int
) -> None:
    """Chunks of 64 KB hold about 850 lines each, over 400 of them invalid: the list must not stop at any
    chunk's share (it stopped at 200 a chunk, then went on with the next chunk's)."""
    report = check_files([many_problems], CheckOptions(max_problems=1000, jobs=jobs, chunk_bytes=65_536))
    assert [problem.line for problem in report.problems] == list(range(2, 1002))
    assert report.files[0].problem_counts == {"E_LAST_ROLE": 2000, "W_DUPLICATE": 1999}
    assert report.files[0].problems_omitted == 2999


def test_the_text_and_the_json_list_the_same_problems_and_say_how_to_list_them_all(
    many_problems: Path,
) -> None:
    text = data_cli("check", str(many_problems), "--max-problems", "300")
    listed = [line for line in text.stderr.splitlines() if line.startswith(f"{many_problems}:")]
    assert listed[-1] == (
        f"{many_problems}: 3,699 more problems not listed (counted by code below; --max-problems 3999 "
        "lists them all)"
    )
    as_json = json.loads(data_cli("check", str(many_problems), "--max-problems", "300", "--json").stdout)
    [file] = as_json["files"]
    assert [f"{many_problems}:{problem['line']}" for problem in file["problems"]] == [
        line.split(": ")[0] for line in listed[:-1]
    ]
    assert file["problems_omitted"] == 3699
    everything = data_cli("check", str(many_problems), "--max-problems", "3999")
    lines = [line for line in everything.stderr.splitlines() if line.startswith(f"{many_problems}:")]
    assert [int(line.split(":")[1]) for line in lines] == list(range(2, 4001))


def test_a_training_file_where_no_example_would_train_is_an_error(jsonl: Callable[..., Path]) -> None:
    """Every example over sequence_len (axolotl drops each one), or every answer at weight 0: the check
    must not say ok. One example that trains is enough."""
    long = [chat("word " * 300, f"answer {number}") for number in range(3)]
    over = data_cli("check", str(jsonl(*long)), "--recipe", "mistral-7b-qlora", "--set", "sequence_len=128")
    assert over.exit_code == 1, over.output
    assert "INVALID" in over.stdout
    assert (
        "error: no example would train: of 3 valid examples, 3 over sequence_len 128, which axolotl drops "
        "(the longest has 3" in over.stderr
    )
    assert "[E_NOTHING_TRAINS]" in over.stderr
    silent = {"messages": [*VALID["messages"][:1], {"role": "assistant", "content": "Paris.", "weight": 0}]}
    weightless = data_cli("check", str(jsonl(silent, silent)))
    assert weightless.exit_code == 1, weightless.output
    assert "no example would train: of 2 valid examples, 2 with every answer at weight 0" in weightless.stderr
    trained = data_cli(
        "check", str(jsonl(*long, VALID)), "--recipe", "mistral-7b-qlora", "--set", "sequence_len=128"
    )
    assert trained.exit_code == 0, trained.output
    assert data_cli("check", str(jsonl(VALID)), "--validation", str(jsonl(silent))).exit_code == 0


def test_duplicates_are_found_across_files(jsonl: Callable[..., Path]) -> None:
    train, validation = jsonl(VALID, SECOND), jsonl(SECOND)
    report = check_files([train, validation], CheckOptions(roles={str(validation): "validation"}, jobs=1))
    [problem] = report.problems
    assert (problem.code, problem.file, problem.line) == ("W_DUPLICATE", str(validation), 1)
    assert problem.message == f"the same example as {train} line 2"
    assert [file.role for file in report.files] == ["train", "validation"]


def test_json_output_matches_its_schema(jsonl: Callable[..., Path], tmp_path: Path) -> None:
    schema = load_schema("data-check")
    for args in (
        [str(jsonl(VALID, INVALID, "{", VALID))],
        [str(jsonl(VALID)), "--recipe", "mixtral-moe", "--write-clean", str(tmp_path / "out.jsonl")],
        [str(jsonl({"text": "t", "labels": {"a": "b"}})), "--format", "classifier", "--role", "validation"],
        [str(jsonl())],
    ):
        result = data_cli("check", *args, "--json")
        jsonschema.validate(json.loads(result.stdout), schema)


def test_exit_codes_and_usage_errors(jsonl: Callable[..., Path]) -> None:
    assert data_cli("check", str(jsonl(VALID))).exit_code == 0
    assert data_cli("check", str(jsonl(VALID, INVALID))).exit_code == 1
    unknown = data_cli("check", str(jsonl(VALID)), "--model", "llama-3")
    assert unknown.exit_code == 2 and "unknown model 'llama-3'" in unknown.stderr
    assert data_cli("check", str(jsonl(VALID)), "--recipe", "no-such-recipe").exit_code == 2
    assert data_cli("check", str(jsonl(VALID)), "--set", "sequence_len=9").exit_code == 2


def test_the_installed_command_reports_without_a_progress_bar_when_piped(jsonl: Callable[..., Path]) -> None:
    """The real console script: `data` is registered by the plugin, problems go to stderr with their
    line, the summary to stdout, and nothing else (no progress bar) when the output is not a terminal."""
    path = jsonl(VALID, INVALID)
    script = Path(sys.executable).with_name("mft-recipes")
    completed = subprocess.run(
        [str(script), "data", "check", str(path), "--model", "Mistral-7B-v0.3"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )
    assert completed.returncode == 1
    assert completed.stderr == (
        f"{path}:2: error: messages[0]: the last message must be from the assistant, got user [E_LAST_ROLE]\n"
    )
    assert completed.stdout.startswith(f"{path} (train): INVALID: 2 examples, 1 valid, 1 invalid\n")
    assert "\r" not in completed.stdout + completed.stderr


def test_progress_is_reported_up_to_the_whole_size(jsonl: Callable[..., Path]) -> None:
    path = jsonl(*[VALID] * 100)
    seen: list[tuple[int, int]] = []
    check_files(
        [path], CheckOptions(jobs=1, chunk_bytes=512), progress=lambda done, total: seen.append((done, total))
    )
    assert len(seen) > 5
    assert seen[-1] == (path.stat().st_size, path.stat().st_size)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_validation_files_get_the_validation_limit_on_the_command_line(jsonl: Callable[..., Path]) -> None:
    big = jsonl(*[chat(f"question {number} " + "x" * 500, "answer") for number in range(2000)])
    small = jsonl(VALID)
    result = data_cli("check", str(big), "--validation", str(small), "--platform", "--json", "--model", "v3")
    assert result.exit_code == 0, result.output  # 1.1 MB is fine for training
    result = data_cli("check", str(small), "--validation", str(big), "--platform", "--json", "--model", "v3")
    assert result.exit_code == 1
    files = {file["file"]: file for file in json.loads(result.stdout)["files"]}
    assert files[str(big)]["role"] == "validation"
    assert files[str(big)]["problem_counts"] == {"E_FILE_TOO_LARGE": 1}
    assert files[str(small)]["valid"]


def test_without_mistral_common_the_check_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mistral-common is installed in this tier; its absence (a bare `pip install mft-recipes`) is
    stood in for by hiding it from the import system."""
    import importlib.util

    from mft_recipes_data import check

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        check.importlib.util,
        "find_spec",
        lambda name, *args: None if name == "mistral_common" else real_find_spec(name, *args),
    )
    data = tmp_path / "train.jsonl"
    data.write_text(
        '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n'
    )
    with pytest.raises(check.CheckError, match=r"pip install 'mft-recipes\[data\]'"):
        check.check_files([data])
