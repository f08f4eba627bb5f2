"""`data convert` turns CSV/JSONL rows into examples that pass `data check`; `data split` is the same for
the same seed, stratified by label, keeps every example exactly once, and fits La Plateforme's 1 MB."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import jsonschema
from mft_recipes_data.check import CheckOptions, check_files
from mft_recipes_data.split import split_file

from mft_recipes.schemas import load_schema

from .conftest import chat, data_cli

PRODUCTS = [
    {
        "name": "Aria Buds",
        "description": 'Wireless earbuds, "ANC", 30 h battery',
        "category": "Electronics > Audio > Earbuds",
    },
    {
        "name": "Bolt 18V",
        "description": "Cordless drill\nwith two batteries",
        "category": "Home > Tools > Drills",
    },
    {"name": "Cirrus", "description": "Air purifier", "category": "Home > Appliances"},
    {"name": "Dune", "description": "", "category": "Books > Fiction > Science fiction"},
]


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_csv_rows_become_chat_examples_that_pass_the_check(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "products.csv", PRODUCTS)
    output = tmp_path / "chat.jsonl"
    result = data_cli(
        "convert",
        str(source),
        "-o",
        str(output),
        "--system",
        "You write category paths.",
        "--user",
        r"Product: {name}\nDescription: {description}",
        "--assistant",
        "{category}",
        "--json",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    jsonschema.validate(summary, load_schema("data-convert"))
    assert (summary["rows"], summary["written"]) == (4, 4)
    assert read_jsonl(output)[1] == chat(
        "Product: Bolt 18V\nDescription: Cordless drill\nwith two batteries",
        "Home > Tools > Drills",
        system="You write category paths.",
    )
    assert check_files([output]).valid


def test_a_category_path_becomes_three_classifier_targets(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "products.csv", PRODUCTS)
    output = tmp_path / "classifier.jsonl"
    result = data_cli(
        "convert",
        str(source),
        "-o",
        str(output),
        "--to",
        "classifier",
        "--text",
        r"{name}\n{description}",
        "--path-column",
        "category",
    )
    assert result.exit_code == 0, result.output
    assert read_jsonl(output) == [
        {
            "text": 'Aria Buds\nWireless earbuds, "ANC", 30 h battery',
            "labels": {"level1": "Electronics", "level2": "Audio", "level3": "Earbuds"},
        },
        {
            "text": "Bolt 18V\nCordless drill\nwith two batteries",
            "labels": {"level1": "Home", "level2": "Tools", "level3": "Drills"},
        },
        {"text": "Dune", "labels": {"level1": "Books", "level2": "Fiction", "level3": "Science fiction"}},
    ]
    assert "row 3: left out: column 'category' has 'Home > Appliances'; expected 3" in result.stderr
    assert "wrote 3 of 4 rows" in result.stdout
    report = check_files([output], CheckOptions(fmt="classifier"))
    assert report.valid and report.files[0].labels["level1"] == {"Electronics": 1, "Home": 1, "Books": 1}


def test_jsonl_rows_and_label_columns(tmp_path: Path) -> None:
    source = tmp_path / "tickets.jsonl"
    source.write_text(
        "\n".join(
            json.dumps(row)
            for row in [
                {"subject": "Refund", "body": "I want my money back", "team": "billing", "urgent": True},
                {"subject": "Crash", "body": "App crashes on start", "team": "mobile", "urgent": False},
            ]
        )
        + "\n"
    )
    output = tmp_path / "out.jsonl"
    result = data_cli(
        "convert",
        str(source),
        "-o",
        str(output),
        "--to",
        "classifier",
        "--text",
        "{subject}: {body}",
        "--label",
        "team",
        "--label",
        "priority=urgent",
    )
    assert result.exit_code == 0, result.output
    assert read_jsonl(output)[0] == {
        "text": "Refund: I want my money back",
        "labels": {"team": "billing", "priority": "true"},
    }


def test_a_template_naming_no_column_is_refused_with_the_columns(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "products.csv", PRODUCTS)
    output = tmp_path / "out.jsonl"
    result = data_cli(
        "convert", str(source), "-o", str(output), "--user", "{title}", "--assistant", "{category}"
    )
    assert result.exit_code == 2
    assert "no column 'title'; the columns are 'name', 'description', 'category'" in result.stderr
    assert not output.exists()
    assert data_cli("convert", str(source), "-o", str(output), "--user", "{name}").exit_code == 2


def labelled(count: int, label: str, size: int = 20) -> list[dict]:
    return [
        {"text": f"{label} item {number} " + "x" * size, "labels": {"kind": label}} for number in range(count)
    ]


def test_split_is_deterministic_per_seed_and_keeps_every_example_once(
    jsonl: Callable[..., Path], tmp_path: Path
) -> None:
    source = jsonl(*[chat(f"question {number}", "answer") for number in range(200)])
    outputs: list[tuple[bytes, bytes]] = []
    for seed in (7, 7, 8):
        train, validation = tmp_path / f"train-{len(outputs)}.jsonl", tmp_path / f"valid-{len(outputs)}.jsonl"
        result = data_cli(
            "split",
            str(source),
            "--train",
            str(train),
            "--validation",
            str(validation),
            "--seed",
            str(seed),
            "--json",
        )
        assert result.exit_code == 0, result.output
        jsonschema.validate(json.loads(result.stdout), load_schema("data-split"))
        outputs.append((train.read_bytes(), validation.read_bytes()))
        assert sorted(train.read_text().splitlines() + validation.read_text().splitlines()) == sorted(
            source.read_text().splitlines()
        )
        assert len(validation.read_text().splitlines()) == 20
    assert outputs[0] == outputs[1]
    assert outputs[0] != outputs[2]


def test_split_is_stratified_by_label(jsonl: Callable[..., Path], tmp_path: Path) -> None:
    source = jsonl(*labelled(100, "common"), *labelled(50, "middle"), *labelled(10, "rare"))
    result = split_file(
        source, tmp_path / "t.jsonl", tmp_path / "v.jsonl", fraction=0.1, seed=3, fmt="classifier"
    )
    validation = Counter(example["labels"]["kind"] for example in read_jsonl(tmp_path / "v.jsonl"))
    assert validation == {"common": 10, "middle": 5, "rare": 1}
    assert result.stratified_by == "kind" and result.validation_labels == dict(validation)


def test_split_for_the_platform_keeps_validation_under_1_mb(
    jsonl: Callable[..., Path], tmp_path: Path
) -> None:
    source = jsonl(*labelled(3000, "a", 900), *labelled(1000, "b", 900))
    assert source.stat().st_size > 3_000_000
    validation = tmp_path / "v.jsonl"
    result = split_file(
        source, tmp_path / "t.jsonl", validation, fraction=0.4, seed=0, platform=True, fmt="classifier"
    )
    assert result.limited_by_size
    assert validation.stat().st_size == result.validation_bytes <= 1_000_000
    assert result.validation_bytes > 1_000_000 - 1000  # as many as fit
    counts = Counter(example["labels"]["kind"] for example in read_jsonl(validation))
    assert abs(counts["a"] - 3 * counts["b"]) <= 3
    check = check_files([validation], CheckOptions(fmt="classifier", role="validation", platform=True))
    assert check.valid


def test_split_refuses_impossible_sizes(jsonl: Callable[..., Path], tmp_path: Path) -> None:
    source = jsonl(chat("only", "one"))
    result = data_cli(
        "split", str(source), "--train", str(tmp_path / "t"), "--validation", str(tmp_path / "v")
    )
    assert result.exit_code == 1 and "cannot hold out 0 of 1 example for" in result.stderr


def test_split_leaves_the_training_file_an_example_that_trains(
    jsonl: Callable[..., Path], tmp_path: Path
) -> None:
    """One example trains, nine have their answer at weight 0: whatever validation would take first, the
    one that trains stays in the training file, or `data check` would refuse it (E_NOTHING_TRAINS)."""
    silent = [
        {
            "messages": [
                {"role": "user", "content": f"q{n}"},
                {"role": "assistant", "content": "a", "weight": 0},
            ]
        }
        for n in range(9)
    ]
    trained = chat("the question", "the answer")
    source = jsonl(trained, *silent)
    train, validation = tmp_path / "t.jsonl", tmp_path / "v.jsonl"
    for seed in range(10):
        split_file(source, train, validation, count=5, seed=seed)
        assert trained in read_jsonl(train)
        assert check_files([train]).valid
        assert len(read_jsonl(validation)) == 5
