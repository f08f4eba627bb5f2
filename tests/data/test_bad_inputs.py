"""`data convert` and `data split` given the mistakes people make: they lose nothing, write nothing half-done
or wrong, and exit by the contract (0 ok; 1 the input was read and is invalid; 2 usage: a bad option, a
missing or unreadable path, an output that is an input) with a message that names the file, row or option.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from mft_recipes_data.check import CheckOptions, check_files

from tests.refusals import assert_refused

from .conftest import chat, data_cli

FAQ = "question,answer\nWhat is 2+2?,4\nCapital of France?,Paris\n"


def files_in(folder: Path) -> dict[str, bytes]:
    """Every file in `folder`, with its bytes: what a refused command must leave as it was."""
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()}


@pytest.fixture
def faq(tmp_path: Path) -> Path:
    path = tmp_path / "faq.csv"
    path.write_text(FAQ, encoding="utf-8")
    return path


def convert(source: Path, *args: str, output: Path | str | None = None) -> Result:
    output = output or source.with_name("out.jsonl")
    return data_cli("convert", str(source), "-o", str(output), *args)


# --- split: the outputs never overwrite each other or the input ---------------------------------------


@pytest.fixture
def examples(jsonl: Callable[..., Path]) -> Path:
    return jsonl(*[chat(f"question {number}", f"answer {number}") for number in range(20)], name="data.jsonl")


def test_split_refuses_the_same_path_for_train_and_validation(examples: Path) -> None:
    before = files_in(examples.parent)
    same = examples.with_name("both.jsonl")
    result = data_cli("split", str(examples), "--train", str(same), "--validation", str(same))
    assert_refused(result, 2, str(same), "--train", "--validation")
    assert files_in(examples.parent) == before


@pytest.mark.parametrize("how", ["dot-slash", "symlink", "hard link", "validation through a symlink"])
def test_split_refuses_an_output_that_is_the_input(
    examples: Path, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = examples.parent
    monkeypatch.chdir(folder)
    train, validation = "train.jsonl", "valid.jsonl"
    if how == "dot-slash":
        train = "./data.jsonl"
    elif how == "symlink":
        os.symlink("data.jsonl", "link.jsonl")
        train = "link.jsonl"
    elif how == "hard link":
        os.link("data.jsonl", "alias.jsonl")
        train = "alias.jsonl"
    else:
        os.symlink(str(examples), "link.jsonl")
        validation = "link.jsonl"
    before = files_in(folder)
    result = data_cli("split", str(examples), "--train", train, "--validation", validation)
    assert_refused(result, 2, "is the input")
    assert files_in(folder) == before


def test_split_refuses_outputs_that_are_one_file_through_a_symlink(examples: Path) -> None:
    target = examples.with_name("train.jsonl")
    target.write_text("")
    os.symlink(target, examples.with_name("other.jsonl"))
    result = data_cli(
        "split", str(examples), "--train", str(target), "--validation", str(examples.with_name("other.jsonl"))
    )
    assert_refused(result, 2, "--train", "--validation", "the same file")
    assert target.read_text() == ""


def test_split_refuses_invalid_examples_instead_of_spreading_them(jsonl: Callable[..., Path]) -> None:
    source = jsonl(*[chat(f"q{number}", "a") for number in range(9)], chat("no answer"), "{broken")
    before = files_in(source.parent)
    result = data_cli(
        "split",
        str(source),
        "--train",
        str(source.with_name("t.jsonl")),
        "--validation",
        str(source.with_name("v.jsonl")),
    )
    assert_refused(result, 1, f"{source}:10", "E_LAST_ROLE", "2 invalid examples", "--write-clean")
    assert files_in(source.parent) == before


def test_split_of_classifier_data_checks_it_as_classifier_data(
    jsonl: Callable[..., Path], tmp_path: Path
) -> None:
    source = jsonl(
        *[{"text": f"item {number}", "labels": {"kind": "ab"[number % 2]}} for number in range(10)]
    )
    train, validation = tmp_path / "t.jsonl", tmp_path / "v.jsonl"
    args = ["split", str(source), "--train", str(train), "--validation", str(validation)]
    assert_refused(data_cli(*args), 1, "E_NO_MESSAGES", "--format classifier")
    result = data_cli(*args, "--format", "classifier")
    assert result.exit_code == 0, result.output
    assert check_files([train, validation], CheckOptions(fmt="classifier")).valid


def test_split_names_a_stratify_target_no_example_has_as_a_usage_error(
    jsonl: Callable[..., Path], tmp_path: Path
) -> None:
    source = jsonl(*[{"text": f"item {number}", "labels": {"kind": "a"}} for number in range(10)])
    result = data_cli(
        "split", str(source), "--format", "classifier", "--stratify", "knd",
        "--train", str(tmp_path / "t.jsonl"), "--validation", str(tmp_path / "v.jsonl"),
    )  # fmt: skip
    assert_refused(result, 2, "'knd'", "--stratify")
    assert not (tmp_path / "t.jsonl").exists()


# --- convert: templates ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "where"),
    [("{question", "--user"), ("question}", "--user"), ("{ques{tion}", "--user"), ("{}", "--user")],
)
def test_convert_refuses_a_malformed_template_and_writes_nothing(
    faq: Path, template: str, where: str
) -> None:
    before = files_in(faq.parent)
    result = convert(faq, "--user", template, "--assistant", "{answer}")
    assert_refused(result, 2, where, repr(template), "{{")
    assert files_in(faq.parent) == before


def test_convert_refuses_an_unknown_column_with_did_you_mean(faq: Path) -> None:
    before = files_in(faq.parent)
    result = convert(faq, "--user", "{questoin}", "--assistant", "{answer}")
    assert_refused(result, 2, str(faq), "no column 'questoin'", "did you mean 'question'", "'answer'")
    assert files_in(faq.parent) == before


def test_convert_warns_when_a_template_has_no_field(faq: Path) -> None:
    """`{{` and `}}` are literal braces, so `{{greeting}}` names no column either."""
    output = faq.with_name("out.jsonl")
    result = convert(faq, "--user", "{{greeting}}", "--assistant", "{answer}")
    assert result.exit_code == 0, result.output
    assert "--user '{{greeting}}' has no {column} field" in result.stderr
    assert "every example gets the same user message" in result.stderr
    assert json.loads(output.read_text().splitlines()[0]) == chat("{greeting}", "4")
    assert check_files([output]).valid


# --- convert: CSV files that are empty, ragged or in another encoding --------------------------------


@pytest.mark.parametrize("content", ["", "question,answer\n", "\n\n"], ids=["empty", "header only", "blank"])
def test_convert_of_a_csv_without_rows_is_an_error(tmp_path: Path, content: str) -> None:
    source = tmp_path / "faq.csv"
    source.write_text(content)
    result = convert(source, "--user", "{question}", "--assistant", "{answer}")
    assert_refused(result, 1, str(source), "no rows")
    assert files_in(tmp_path) == {"faq.csv": content.encode()}


def test_convert_refuses_a_ragged_row_naming_it(tmp_path: Path) -> None:
    source = tmp_path / "faq.csv"
    source.write_text('question,answer\nWhat is 2+2?,4\n"Multi\nline",Paris,extra\nlast,row\n')
    result = convert(source, "--user", "{question}", "--assistant", "{answer}")
    assert_refused(result, 1, f"{source}: row 2 (line 3)", "3 fields", "the header has 2", "--delimiter")
    assert files_in(tmp_path) == {"faq.csv": source.read_bytes()}
    short = tmp_path / "short.csv"
    short.write_text("question,answer\nonly one field\n")
    assert_refused(
        convert(short, "--user", "{question}", "--assistant", "{answer}"), 1, "row 1 (line 2)", "1 field;"
    )


def test_convert_names_the_line_of_text_that_is_not_utf8_and_offers_encoding(tmp_path: Path) -> None:
    source = tmp_path / "faq.csv"
    source.write_bytes("question,answer\nfine,row\nCaf\u00e9?,Yes\n".encode("cp1252"))
    args = ["--user", "{question}", "--assistant", "{answer}"]
    result = convert(source, *args)
    assert_refused(result, 1, f"{source}: line 3", "not UTF-8", "--encoding")
    assert files_in(tmp_path) == {"faq.csv": source.read_bytes()}
    result = convert(source, *args, "--encoding", "cp1252")
    assert result.exit_code == 0, result.output
    assert json.loads(source.with_name("out.jsonl").read_text().splitlines()[1]) == chat("Café?", "Yes")
    assert_refused(convert(source, *args, "--encoding", "klingon"), 2, "--encoding", "klingon")


def test_convert_takes_a_delimiter(tmp_path: Path) -> None:
    source = tmp_path / "faq.csv"
    source.write_text("question;answer\nWhat is 2+2?;4\n")
    args = ["--user", "{question}", "--assistant", "{answer}"]
    assert_refused(convert(source, *args), 2, "no column 'question'", "'question;answer'", "--delimiter")
    result = convert(source, *args, "--delimiter", ";")
    assert result.exit_code == 0, result.output
    assert json.loads(source.with_name("out.jsonl").read_text()) == chat("What is 2+2?", "4")
    tabbed = tmp_path / "faq.txt"
    tabbed.write_text("question\tanswer\nWhat is 2+2?\t4\n")
    result = convert(tabbed, *args, "--input-format", "csv", "--delimiter", "\\t")
    assert result.exit_code == 0, result.output
    assert_refused(convert(source, *args, "--delimiter", ";;"), 2, "--delimiter")


def test_convert_that_keeps_no_row_writes_nothing(tmp_path: Path) -> None:
    source = tmp_path / "faq.csv"
    source.write_text("question,answer\n  ,4\nWhy?,\n")
    result = convert(source, "--user", "{question}", "--assistant", "{answer}")
    assert_refused(result, 1, "no row became an example", "row 1", "row 2")
    assert files_in(tmp_path) == {"faq.csv": source.read_bytes()}


def test_convert_refuses_an_output_that_is_the_input(faq: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(faq.parent)
    os.symlink("faq.csv", "link.csv")
    for output in ("./faq.csv", "link.csv"):
        result = convert(faq, "--user", "{question}", "--assistant", "{answer}", output=output)
        assert_refused(result, 2, output, "is the input")
        assert faq.read_text() == FAQ


@pytest.mark.parametrize("command", ["convert", "split", "check"])
def test_paths_that_cannot_be_read_or_written_are_usage_errors(
    faq: Path, examples: Path, command: str
) -> None:
    """A missing input, a folder for an input, an output under a file: exit 2 naming the path."""
    blocked = faq.with_name("a-file") / "out.jsonl"
    blocked.parent.write_text("I am a file")
    folder = faq.parent / "folder"
    folder.mkdir()
    before = files_in(faq.parent)
    if command == "convert":
        args = ["--user", "{question}", "--assistant", "{answer}"]
        runs = [(faq, ["-o", str(blocked), *args]), (folder, ["-o", "o.jsonl", *args])]
    elif command == "split":
        runs = [
            (examples, ["--train", str(blocked), "--validation", str(faq.with_name("v.jsonl"))]),
            (folder, ["--train", "t.jsonl", "--validation", "v.jsonl"]),
        ]
    else:
        runs = [(examples, ["--write-clean", str(blocked)]), (folder, [])]
    runs.append((faq.with_name("missing.jsonl"), runs[-1][1]))
    for source, tail in runs:
        result = data_cli(command, str(source), *tail)
        assert_refused(result, 2, str(blocked) if source in (faq, examples) else str(source))
    assert files_in(faq.parent) == before
