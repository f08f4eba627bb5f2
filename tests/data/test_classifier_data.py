"""The product classifier's data, from one CSV: `data convert` writes the category path in one form for
both routes (chat for mistral-7b-classifier, level targets for platform-classifier), `data split
--stratify answer` puts every leaf with two examples into validation, and `data check --recipe
mistral-7b-classifier` holds answers to three levels and reports the leaves."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest
from mft_recipes_data.check import CheckOptions, check_files
from mft_recipes_data.split import split_file

from mft_recipes import CategoryPath
from mft_recipes.schemas import load_schema

from .conftest import chat, data_cli
from .test_convert_split import read_jsonl, write_csv

# The same leaves written as exports write them: other separators' spacing, doubled spaces, a trailing
# blank; one row with two levels, one with an empty level.
MESSY = [
    ("Aria Buds", "Wireless earbuds", "Electronics>Audio>Earbuds", "Electronics > Audio > Earbuds"),
    ("Bolt 18V", "Cordless drill", " Home >  Power tools>Drills ", "Home > Power tools > Drills"),
    ("Dune", "A novel", "Books  >Fiction > Science   fiction", "Books > Fiction > Science fiction"),
    ("Cirrus", "Air purifier", "Home > Appliances", None),
    ("Nimbus", "Humidifier", "Home > > Humidifiers", None),
]


def products(tmp_path: Path) -> Path:
    rows = [{"name": name, "description": text, "category": path} for name, text, path, _ in MESSY]
    return write_csv(tmp_path / "products.csv", rows)


def test_the_chat_answer_is_the_path_written_in_one_form(tmp_path: Path) -> None:
    output = tmp_path / "chat.jsonl"
    result = data_cli(
        "convert",
        str(products(tmp_path)),
        "-o",
        str(output),
        "--user",
        r"{name}\n{description}",
        "--path-column",
        "category",
        "--system",
        "Answer with the product's category path.",
    )
    assert result.exit_code == 0, result.output
    expected = [path for _, _, _, path in MESSY if path]
    assert [example["messages"][-1]["content"] for example in read_jsonl(output)] == expected
    assert read_jsonl(output)[0]["messages"][:2] == [
        {"role": "system", "content": "Answer with the product's category path."},
        {"role": "user", "content": "Aria Buds\nWireless earbuds"},
    ]
    assert "row 4: left out: column 'category' has 'Home > Appliances'; expected 3 non-empty" in result.stderr
    assert "row 5: left out: column 'category' has 'Home > > Humidifiers'" in result.stderr
    report = check_files([output], CheckOptions(recipe="mistral-7b-classifier"))
    assert report.files[0].problem_counts.keys() <= {"W_RARE_LEAF"}  # three answers of the recipe's shape


def test_one_csv_gives_both_routes_the_same_rows_and_levels(tmp_path: Path) -> None:
    source = products(tmp_path)
    chat_file, classifier_file = tmp_path / "chat.jsonl", tmp_path / "classifier.jsonl"
    common = ("--path-column", "category")
    assert data_cli("convert", str(source), "-o", str(chat_file), "--user", "{name}", *common).exit_code == 0
    converted = data_cli(
        "convert", str(source), "-o", str(classifier_file), "--to", "classifier", "--text", "{name}", *common
    )
    assert converted.exit_code == 0
    chats, classified = read_jsonl(chat_file), read_jsonl(classifier_file)
    assert [example["messages"][0]["content"] for example in chats] == [row["text"] for row in classified]
    assert [CategoryPath.split(example["messages"][-1]["content"]) for example in chats] == [
        list(row["labels"].values()) for row in classified
    ]
    assert list(classified[1]["labels"]) == ["level1", "level2", "level3"]


def test_an_answer_template_and_a_path_column_do_not_go_together(tmp_path: Path) -> None:
    result = data_cli(
        "convert",
        str(products(tmp_path)),
        "-o",
        str(tmp_path / "out.jsonl"),
        "--user",
        "{name}",
        "--assistant",
        "{category}",
        "--path-column",
        "category",
    )
    assert result.exit_code == 2
    assert "either an --assistant template or a --path-column" in result.stderr


def leaf_examples(counts: dict[str, int]) -> list[dict]:
    return [
        chat(f"{leaf} product {number}", leaf) for leaf, count in counts.items() for number in range(count)
    ]


def test_a_split_on_the_answer_puts_every_leaf_with_two_examples_into_validation(
    jsonl: Callable[..., Path], tmp_path: Path
) -> None:
    """20 examples for validation, 18 leaves of which 14 have 2 to 6 examples: proportional rounding
    would hold out none of those; each is held out once, the common leaf gives the rest, and the leaves
    with one example stay in training."""
    counts = {"A > B > Common": 100, **{f"A > C > Rare {n}": 2 + n % 5 for n in range(14)}}
    counts |= {f"A > D > Single {n}": 1 for n in range(3)}
    source = jsonl(*leaf_examples(counts))
    train, validation = tmp_path / "t.jsonl", tmp_path / "v.jsonl"
    result = data_cli(
        "split", str(source), "--train", str(train), "--validation", str(validation), "--count", "20",
        "--stratify", "answer", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    jsonschema.validate(summary, load_schema("data-split"))
    held = Counter(example["messages"][-1]["content"] for example in read_jsonl(validation))
    assert {leaf for leaf in held if "Rare" in leaf} == {leaf for leaf in counts if "Rare" in leaf}
    assert all(held[leaf] == 1 for leaf in counts if "Rare" in leaf)
    assert held["A > B > Common"] == 20 - 14 and not any("Single" in leaf for leaf in held)
    assert (summary["labels"], summary["labels_with_one_example"]) == (18, 3)
    assert summary["stratified_by"] == "answer" and summary["validation_labels"] == dict(held)


def test_a_classifier_file_splits_on_its_labels_together(jsonl: Callable[..., Path], tmp_path: Path) -> None:
    """Two leaves under one level1 and level2: on the first target alone they are one stratum, and the
    rare one could miss validation; on the answer each is a stratum."""
    rows = [
        {"text": f"{leaf} {number}", "labels": {"level1": "A", "level2": "B", "level3": leaf}}
        for leaf, count in (("Common", 40), ("Rare", 2))
        for number in range(count)
    ]
    source = jsonl(*rows)
    for seed in range(5):
        split_file(
            source, tmp_path / "t.jsonl", tmp_path / "v.jsonl", count=3, seed=seed, stratify="answer",
            fmt="classifier",
        )  # fmt: skip
        held = Counter(row["labels"]["level3"] for row in read_jsonl(tmp_path / "v.jsonl"))
        assert held == {"Common": 2, "Rare": 1}


def test_the_classifier_recipe_reports_rare_leaves_and_leaves_validation_has_alone(
    jsonl: Callable[..., Path],
) -> None:
    train = jsonl(*leaf_examples({"A > B > C": 12, "A > B > D": 3, "A > E > F": 1}))
    validation = jsonl(*leaf_examples({"A > B > C": 2, "Z > Y > X": 1}))
    report = check_files(
        [train, validation],
        CheckOptions(recipe="mistral-7b-classifier", roles={str(validation): "validation"}),
    )
    assert report.valid  # warnings
    rare = [problem for problem in report.problems if problem.code == "W_RARE_LEAF"]
    assert [(problem.file, problem.line) for problem in rare] == [(str(train), None)]
    assert "for 2 of 3 leaves: 'A > E > F' (1), 'A > B > D' (3)" in rare[0].message
    unseen = [problem for problem in report.problems if problem.code == "W_UNSEEN_LEAF"]
    assert [problem.file for problem in unseen] == [str(validation)]
    assert (
        "no training example for 1 leaf of this file" in unseen[0].message
        and "'Z > Y > X'" in unseen[0].message
    )
    assert report.as_json()["files"][0]["labels"] == {
        "path": {"A > B > C": 12, "A > B > D": 3, "A > E > F": 1}
    }
    assert report.as_json()["recipe"]["category_path"] == {"levels": 3, "min_examples": 10}


def test_the_report_shows_the_leaves_and_the_levels_above_them(jsonl: Callable[..., Path]) -> None:
    source = jsonl(*leaf_examples({"A > B > C": 12, "A > B > D": 10, "E > F > G": 11}))
    result = data_cli("check", str(source), "--recipe", "mistral-7b-classifier")
    assert result.exit_code == 0, result.output
    assert (
        "category paths: 3 leaves, 2 at level 1, 2 at level 2; examples per leaf: min 10, median 11, max 12; "
        "commonest: A > B > C 12, E > F > G 11, A > B > D 10"
    ) in result.stdout


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ("A > B", "'A > B' has 2 levels; the recipe's paths have 3"),
        ("A > B > C > D", "'A > B > C > D' has 4 levels"),
        ("A > > C", "'A > > C' has an empty level"),
        ("A>B > C", "'A>B > C' is written 'A > B > C' in the recipe's form"),
        ("A > B  > C", "'A > B  > C' is written 'A > B > C'"),
    ],
)
def test_an_answer_of_another_shape_is_an_error_for_the_classifier_recipe(
    answer: str, why: str, jsonl: Callable[..., Path]
) -> None:
    result = data_cli("check", str(jsonl(chat("a product", answer))), "--recipe", "mistral-7b-classifier")
    assert result.exit_code == 1
    assert f"messages[1].content: the answer {why}" in result.stderr and "[E_ANSWER_PATH]" in result.stderr
    assert data_cli("check", str(jsonl(chat("a product", answer)))).exit_code == 0  # any answer, any recipe
