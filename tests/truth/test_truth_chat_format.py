"""Check 6: each recipe's chat format, token for token, through axolotl's own data preparation.

    mft-recipes render RECIPE base_model=<tiny> dataset=<conversations> device=cpu sequence_len=256 ... -o cfg.yml
    axolotl preprocess cfg.yml

on a tiny model of the recipe's architecture with Mistral's real tokenizer of the recipe's version (v1 or
v3) and no chat template, as published base models have none. One JSONL per recipe holds every case at
once (one axolotl start per recipe): system prompts, multi-turn conversations, answers with weight 0,
tool calls and results (v3; v1 has no tool tokens and `data check` refuses them), unicode, runs of
spaces, literal control strings, one conversation longer than sequence_len, one that trains nothing, and
one with keys no trainer reads (which `data check` warns about and does not count).
Then, row by row of the prepared dataset axolotl saved:

- the tokens equal mistral-common's `encode_chat_completion` of the conversation (finetuning mode);
- the labels are exactly the assistant messages without weight 0, each with its EOS;
- the rows kept are the ones `data check --recipe` says axolotl keeps, and its counts are the row lengths.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mft_recipes_data.check import CheckOptions, check_files
from mft_recipes_data.training import KEPT, TRUNCATED, axolotl_fate

from mft_recipes import CategoryPath
from mft_recipes.host import get_registry
from tests.conversations import (
    PLAIN,
    WITH_TOOLS,
    conversations,
    decode,
    expected_trained_texts,
    reference_tokens,
    trained_spans,
)
from tests.tiny_models import build_tiny_model, build_tokenizer
from tests.truth.cases import axolotl_recipes
from tests.truth.test_truth_training import BIN, run_environment

pytestmark = [pytest.mark.axolotl, pytest.mark.usefixtures("axolotl_installed")]

RECIPES = {recipe.name: recipe for recipe in axolotl_recipes()}
SEQUENCE_LEN = 256
OVERRIDES = {"device": "cpu", "sequence_len": SEQUENCE_LEN, "val_set_size": 0, "num_epochs": 1}
# The cases with path answers (with_path_answers) are longer: still one over sequence_len, not two.
PATH_SEQUENCE_LEN = 320


def cases(version: str) -> list[dict[str, Any]]:
    """The conversations of the check: every format case, one over sequence_len, one that trains nothing."""
    long = {
        "messages": [
            {"role": "user", "content": "Count to two hundred."},
            {"role": "assistant", "content": " ".join(str(number) for number in range(1, 201))},
        ]
    }
    nothing = {
        "messages": [
            {"role": "user", "content": "Say nothing useful."},
            {"role": "assistant", "content": "Nothing useful.", "weight": 0},
        ]
    }
    # Keys no trainer reads (mistral-common's message models would refuse them): dropped, not refused.
    keys_not_read = {
        "id": 7,
        "messages": [
            {"role": "system", "content": "Keys no trainer reads.", "tool_calls": []},
            {"role": "user", "content": "Are they kept?", "name": "ann"},
            {"role": "assistant", "content": "No, they are dropped.", "source": "human"},
        ],
    }
    return [*conversations(version), long, nothing, keys_not_read]


def with_path_answers(example: dict[str, Any], number: int) -> dict[str, Any]:
    """The conversation with each text answer made a three-level category path that keeps its words
    (unicode, literal control strings): a classifier recipe's `data check` refuses other answers."""
    messages = []
    for turn, message in enumerate(example["messages"]):
        if message["role"] == "assistant" and isinstance(message.get("content"), str):
            words = " ".join(message["content"].replace(">", "›").split()) or "empty"
            message = {**message, "content": CategoryPath.join([str(number), str(turn), words])}
        messages.append(message)
    return {**example, "messages": messages}


@dataclass
class Prepared:
    """One recipe's run: the conversations, the tiny model, and what `axolotl preprocess` said and saved."""

    version: str
    examples: list[dict[str, Any]]
    data: Path
    base: Path
    workdir: Path
    overrides: dict[str, Any]
    result: subprocess.CompletedProcess[str] | None = None

    def command(self, name: str) -> str:
        overrides = {
            "base_model": str(self.base),
            "dataset": str(self.data),
            "output_dir": str(self.workdir / "out"),
            **self.overrides,
        }
        words = " ".join(shlex.quote(f"{key}={value}") for key, value in overrides.items())
        config = shlex.quote(str(self.workdir / "config.yml"))
        return (
            f"set -e; {shlex.quote(str(BIN / 'mft-recipes'))} render {name} {words} -o {config}; "
            f"{shlex.quote(str(BIN / 'axolotl'))} preprocess {config}"
        )

    def rows(self) -> list[dict[str, Any]]:
        """The rows axolotl saved (dataset_prepared_path defaults to ./last_run_prepared/<hash>)."""
        from datasets import load_from_disk

        assert self.result is not None and self.result.returncode == 0, (
            (self.result.stdout + self.result.stderr)[-6000:] if self.result else "not run"
        )
        [prepared] = [path for path in (self.workdir / "last_run_prepared").iterdir() if path.is_dir()]
        return list(load_from_disk(str(prepared)))


@pytest.fixture(scope="module")
def prepared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Prepared]:
    """Every selected recipe rendered and run through `axolotl preprocess`, two at a time: each run is
    mostly axolotl's import on one core."""
    selected = {
        item.callspec.params["name"]
        for item in request.session.items
        if isinstance(item, pytest.Function)
        and item.originalname == "test_axolotl_prepares_mistral_format_token_for_token"
    }
    models: dict[tuple[str, bool], Path] = {}
    runs: dict[str, Prepared] = {}
    for name, recipe in RECIPES.items():
        if name not in selected:
            continue
        architecture = get_registry().architectures[recipe.model]
        version = architecture.tokenizer
        key = (version, architecture.is_moe)
        if key not in models:
            folder = tmp_path_factory.mktemp(f"tiny-{version}-{'moe' if key[1] else 'dense'}")
            models[key] = build_tiny_model(folder, moe=key[1], tokenizer=version)
        workdir = tmp_path_factory.mktemp(name)
        examples, overrides = cases(version), OVERRIDES
        if recipe.category_path is not None:
            examples = [with_path_answers(example, number) for number, example in enumerate(examples)]
            overrides = {**OVERRIDES, "sequence_len": PATH_SEQUENCE_LEN}
        data = workdir / "conversations.jsonl"
        data.write_text("".join(json.dumps(example, ensure_ascii=False) + "\n" for example in examples))
        runs[name] = Prepared(version, examples, data, models[key], workdir, overrides)

    def run(name: str) -> None:
        runs[name].result = subprocess.run(
            ["bash", "-c", runs[name].command(name)],
            capture_output=True,
            text=True,
            env=run_environment(),
            cwd=runs[name].workdir,
            timeout=900,
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(run, runs))
    return runs


@pytest.mark.parametrize("name", list(RECIPES))
def test_axolotl_prepares_mistral_format_token_for_token(name: str, prepared: dict[str, Prepared]) -> None:
    run = prepared[name]
    version, examples, rows = run.version, run.examples, run.rows()
    expected = [reference_tokens(version, example) for example in examples]
    by_tokens = {tuple(tokens): index for index, tokens in enumerate(expected)}
    assert len(by_tokens) == len(examples), "the cases must be told apart by their tokens"
    found: dict[int, dict[str, Any]] = {}
    for row in rows:
        index = by_tokens.get(tuple(row["input_ids"]))
        assert index is not None, (
            f"a row that is no conversation's mistral-common encoding: {row['input_ids']}"
        )
        found[index] = row
    for index, row in found.items():
        spans = [decode(version, row["input_ids"][a:b]) for a, b in trained_spans(row["labels"])]
        assert spans == expected_trained_texts(version, examples[index]), examples[index]
        assert all(
            label in (-100, token) for label, token in zip(row["labels"], row["input_ids"], strict=True)
        )

    report = check_files(
        [run.data], CheckOptions(recipe=name, overrides={**run.overrides, "base_model": str(run.base)})
    )
    assert report.valid, [str(problem) for problem in report.problems]
    assert report.training is not None
    counts, trained_from = report.files[0].token_counts, report.files[0].trained_from
    kept = {
        index
        for index, (tokens, first) in enumerate(zip(counts, trained_from, strict=True))
        if axolotl_fate(report.training, tokens, first) in (KEPT, TRUNCATED)
    }
    assert set(found) == kept, "data check's verdict must be axolotl's: the rows it kept"
    assert [counts[index] for index in sorted(found)] == [
        len(found[index]["input_ids"]) for index in sorted(found)
    ]
    assert len(examples) - len(kept) == 2 - (0 if report.training.sample_packing else 1)
    epoch = report.epoch
    assert epoch is not None and epoch.examples_per_epoch == len(rows)
    assert epoch.tokens_per_epoch == sum(len(row["input_ids"]) for row in rows)


@pytest.fixture(scope="module")
def hf_tokenizers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Mistral's v1 and v3 tokenizers converted for transformers, as the tiny models carry them."""
    return {
        version: build_tokenizer(tmp_path_factory.mktemp(version), version=version)
        for version in ("v1", "v3")
    }


def test_the_dataset_type_refuses_a_model_of_the_other_tokenizer_version(
    hf_tokenizers: dict[str, Any],
) -> None:
    from mft_recipes_axolotl.mistral_chat import load_for

    assert load_for("v3", hf_tokenizers["v3"], {}).version == "v3"
    with pytest.raises(ValueError, match=r"mistral_chat\.v1 writes the ids of Mistral's v1 tokenizer"):
        load_for("v1", hf_tokenizers["v3"], {})
    with pytest.raises(ValueError, match="32768 pieces"):
        load_for("v3", hf_tokenizers["v1"], {})


def test_the_saved_template_renders_mistral_text_but_hf_tokens_part_on_spaces_and_control_strings(
    hf_tokenizers: dict[str, Any],
) -> None:
    """Why training does not go through the template: the chat_template.jinja saved with the model gives a
    Hugging Face tokenizer the same text mistral-common encodes, and its tokens are mistral-common's, except
    where the text has runs of spaces (BPE merges "▁▁"; sentencepiece splits at each space) or literal
    control strings ("[INST]", "</s>" read as control tokens). Tool calls need mistral-common: the template
    says so."""
    from mft_recipes_catalogue.chat_format import chat_template

    differ = {}
    for version, tokenizer in hf_tokenizers.items():
        template = chat_template(version)
        differ[version] = [
            index
            for index, example in enumerate(PLAIN)
            if tokenizer.apply_chat_template(example["messages"], chat_template=template, return_dict=False)
            != reference_tokens(version, example)
        ]
        with pytest.raises(Exception, match="--tokenizer-mode mistral"):
            tokenizer.apply_chat_template(WITH_TOOLS[0]["messages"], chat_template=template)
    spaces_and_control_strings = [7, 8, 9, 10]  # PLAIN's whitespace and literal control-string cases
    assert differ == {"v1": spaces_and_control_strings, "v3": spaces_and_control_strings}


def test_data_check_truncation_verdict_is_axolotls(axolotl_installed: Any) -> None:
    """excess_length_strategy: truncate (no recipe sets it; a hand-edited config may): axolotl's own
    functions, in the order its dataset preparation calls them, keep exactly the rows `axolotl_fate` keeps
    and cut them to sequence_len."""
    from axolotl.utils.data.utils import handle_long_seq_in_dataset
    from axolotl.utils.dict import DictDefault
    from axolotl.utils.trainer import process_datasets_for_packing
    from datasets import Dataset
    from mft_recipes_axolotl.mistral_chat import MistralChatStrategy
    from mft_recipes_data.tokens import ChatTokenCounter
    from mft_recipes_data.training import TrainingSettings

    limit = 48
    late_answer = {
        "messages": [
            {"role": "user", "content": "word " * 80},
            {"role": "assistant", "content": "A late answer, all cut off."},
        ]
    }
    examples = [*cases("v3"), late_answer]
    rows = MistralChatStrategy("v3").tokenize_prompt(
        {"messages": [e["messages"] for e in examples], "tools": [e.get("tools") for e in examples]}
    )
    dataset = Dataset.from_dict({**rows, "index": list(range(len(examples)))})
    settings: dict[str, Any] = {
        "excess_length_strategy": "truncate",
        "sequence_len": limit,
        "sample_packing": True,
    }
    cfg = DictDefault(
        {**settings, "dataset_num_proc": 1, "is_preprocess": True, "model_config_type": "mistral"}
    )
    dataset = handle_long_seq_in_dataset(dataset, limit, cfg)
    dataset, _ = process_datasets_for_packing(cfg, dataset, None)

    counter = ChatTokenCounter("v3")
    verdict = TrainingSettings("r", "Mistral-7B-v0.3", "axolotl", **settings)
    fates = [axolotl_fate(verdict, *counter.count_chat(example)) for example in examples]
    assert list(dataset["index"]) == [i for i, fate in enumerate(fates) if fate in (KEPT, TRUNCATED)]
    assert "untrained" in fates and TRUNCATED in fates
    lengths = dict(zip(dataset["index"], map(len, dataset["input_ids"]), strict=True))
    assert all(lengths[i] == min(len(rows["input_ids"][i]), limit) for i in lengths)
