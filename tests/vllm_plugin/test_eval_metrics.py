"""Eval's scores on cases small enough to check by hand (no vLLM: these run in the fast tier)."""

from __future__ import annotations

import pytest
from mft_recipes_vllm import metrics
from mft_recipes_vllm.eval_data import Example, Task
from mft_recipes_vllm.summary import summarise
from mft_recipes_vllm.variants import Variant

from mft_recipes.host import build_registry


def test_exact_and_normalised_match() -> None:
    predictions = ["Paris", " paris.", "The Eiffel tower", "London"]
    references = ["Paris", "Paris", "eiffel Tower!", "Paris"]
    # exact: only the first (whitespace aside: " paris." still differs in case and punctuation)
    assert metrics.exact_match(predictions, references) == 0.25
    # normalised: Paris, paris., The Eiffel tower ~ eiffel Tower! (article, case, punctuation) → 3 of 4
    assert metrics.normalised_match(predictions, references) == 0.75


def test_token_f1_by_hand() -> None:
    # "the cat sat" vs "a cat sat down": articles dropped → {cat, sat} vs {cat, sat, down}:
    # precision 2/2, recall 2/3, F1 = 2·1·(2/3)/(1 + 2/3) = 0.8
    assert metrics.token_f1(["the cat sat"], ["a cat sat down"]) == pytest.approx(0.8)
    assert metrics.token_f1(["dog"], ["cat"]) == 0.0
    assert metrics.token_f1(["", "x"], ["", "x"]) == 1.0


def test_top_k_and_level_accuracy_by_hand() -> None:
    references = ["A > B > C", "A > B > D", "E > F > G"]
    rankings = [
        ["A > B > C", "A > B > D", "E > F > G"],  # right at 1
        ["A > B > C", "A > B > D", "E > F > G"],  # right at 2; levels 1-2 right at 1
        ["A > B > C", "A > B > D", "E > F > G"],  # right at 3; nothing right at 1
    ]
    assert metrics.top_k_accuracy(rankings, references, 1) == pytest.approx(1 / 3)
    assert metrics.top_k_accuracy(rankings, references, 2) == pytest.approx(2 / 3)
    assert metrics.top_k_accuracy(rankings, references, 3) == 1.0
    assert metrics.level_accuracy(rankings, references, 1) == pytest.approx([2 / 3, 2 / 3, 1 / 3])
    assert metrics.level_accuracy(rankings, references, 3) == [1.0, 1.0, 1.0]
    assert metrics.levels(" Home >Kitchen > Knives ") == ["Home", "Kitchen", "Knives"]


def test_summarise_side_by_side_with_plugin_metrics() -> None:
    """metrics.json from predictions on disk: per model, the built-in scores, per-level accuracy, and a
    metric a plugin registered through the evaluation hook."""
    from mft_recipes.hookspecs import hookimpl
    from mft_recipes.steps import Metric

    class LengthPlugin:
        @hookimpl
        def register_metrics(self, register):
            register(
                Metric(
                    "short",
                    "answer has at most 2 words",
                    lambda p, r: sum(len(x.split()) <= 2 for x in p) / len(p),
                    ("classification",),
                )
            )

    registry = build_registry([("length", LengthPlugin())])
    assert {"exact_match", "normalised_match", "token_f1", "short"} <= set(registry.metrics)
    examples = [Example(0, [], "A > B"), Example(1, [], "A > C")]
    predictions = [
        {
            "model": "base",
            "index": 0,
            "reference": "A > B",
            "prediction": "A > C",
            "ranking": ["A > C", "A > B"],
        },
        {
            "model": "base",
            "index": 1,
            "reference": "A > C",
            "prediction": "A > C",
            "ranking": ["A > C", "A > B"],
        },
        {
            "model": "adapter",
            "index": 0,
            "reference": "A > B",
            "prediction": "A > B",
            "ranking": ["A > B", "A > C"],
        },
        {
            "model": "adapter",
            "index": 1,
            "reference": "A > C",
            "prediction": "A > C",
            "ranking": ["A > C", "A > B"],
        },
    ]
    timings = [
        {
            "model": "base",
            "kind": "latency",
            "seconds": [1.0, 2.0, 3.0],
            "version": "0",
            "device": "cpu",
            "distribution": "vllm",
        }
    ]
    run = {"data": "test.jsonl", "settings": {}}
    result = summarise(
        run,
        [Variant("base", "m"), Variant("adapter", "m", lora="a")],
        examples,
        Task("classification", ["A > B", "A > C"], (1, 2)),
        predictions,
        timings,
        list(registry.metrics.values()),
    )
    base, adapter = result["models"]["base"], result["models"]["adapter"]
    assert base["scores"] == {"accuracy": 0.5, "top1_by_logprob": 0.5, "top2_by_logprob": 1.0, "short": 0.0}
    assert adapter["scores"]["accuracy"] == 1.0
    assert base["levels"]["accuracy"] == [1.0, 0.5]
    assert base["latency"] == {"requests": 3, "p50_s": 2.0, "p95_s": pytest.approx(2.9)}
    assert adapter["latency"] is None
