"""metrics.json of an eval (schemas/eval-metrics.schema.json): per variant the scores, the accuracy per
level of a hierarchical label, latency and throughput, from the predictions and timings on disk."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from mft_recipes_vllm import metrics as builtin
from mft_recipes_vllm.eval_data import Example, Task
from mft_recipes_vllm.variants import Variant


def summarise(
    run: dict[str, Any],
    variants: list[Variant],
    examples: list[Example],
    task: Task,
    predictions: list[dict[str, Any]],
    timings: list[dict[str, Any]],
    extra_metrics: Sequence[Any] = (),
) -> dict[str, Any]:
    """metrics.json: per variant the scores, per-level accuracy, latency and throughput."""
    models = {}
    for variant in variants:
        by_index = {r["index"]: r for r in predictions if r["model"] == variant.name}
        records = [by_index[e.index] for e in examples if e.index in by_index]
        answers = [r["prediction"] for r in records]
        references = [r["reference"] for r in records]
        scores: dict[str, float] = {}
        levels: dict[str, list[float]] = {}
        if task.kind == "classification":
            scores["accuracy"] = builtin.exact_match(answers, references)
            rankings = [r["ranking"] for r in records]
            for k in task.top_k:
                scores[f"top{k}_by_logprob"] = builtin.top_k_accuracy(rankings, references, k)
                levels[f"top{k}_by_logprob"] = builtin.level_accuracy(rankings, references, k)
            levels["accuracy"] = builtin.level_accuracy([[a] for a in answers], references, 1)
        for metric in extra_metrics:
            if task.kind in metric.tasks and metric.name not in scores:
                scores[metric.name] = float(metric.compute(answers, references))
        models[variant.name] = {
            "model": variant.model,
            "adapter": variant.lora,
            "examples": len(records),
            "scores": scores,
            "levels": levels,
            "latency": _latency(variant.name, timings),
            "throughput": _throughput(variant.name, timings),
            "ranking": _ranking(variant.name, timings) if task.kind == "classification" else None,
        }
    identity: dict[str, Any] = timings[-1] if timings else {}
    return {
        "task": task.kind,
        "data": run["data"],
        "examples": len(examples),
        "labels": len(task.labels) if task.kind == "classification" else None,
        "models": models,
        "vllm": {key: identity.get(key, "") for key in ("distribution", "version", "device")},
        "settings": run["settings"],
    }


def _latency(name: str, timings: list[dict[str, Any]]) -> dict[str, Any] | None:
    seconds = next((t["seconds"] for t in timings if t["model"] == name and t["kind"] == "latency"), None)
    if not seconds:
        return None
    cuts = statistics.quantiles(seconds, n=100, method="inclusive") if len(seconds) > 1 else seconds * 99
    return {"requests": len(seconds), "p50_s": cuts[49], "p95_s": cuts[94]}


def _ranking(name: str, timings: list[dict[str, Any]]) -> dict[str, Any] | None:
    """What ranking the label set cost, per example: seconds, trie nodes expanded, tokens computed."""
    batches = [t for t in timings if t["model"] == name and t["kind"] == "batch" and "ranked_nodes" in t]
    examples = sum(t["examples"] for t in batches)
    if not examples:
        return None
    return {
        "examples": examples,
        "seconds_per_example": sum(t["ranking_seconds"] for t in batches) / examples,
        "nodes_per_example": sum(t["ranked_nodes"] for t in batches) / examples,
        "scored_tokens_per_example": sum(t["scored_tokens"] for t in batches) / examples,
    }


def _throughput(name: str, timings: list[dict[str, Any]]) -> dict[str, Any] | None:
    batches = [t for t in timings if t["model"] == name and t["kind"] == "batch"]
    seconds = sum(t["seconds"] for t in batches)
    if not batches or seconds <= 0:
        return None
    prompt_tokens = sum(t["prompt_tokens"] + t.get("scored_tokens", 0) for t in batches)
    output_tokens = sum(t["output_tokens"] for t in batches)
    return {
        "seconds": seconds,
        "prompt_tokens": prompt_tokens,
        "output_tokens": output_tokens,
        "prompt_tokens_per_s": prompt_tokens / seconds,
        "output_tokens_per_s": output_tokens / seconds,
    }
