"""report.md and chart.png of an eval: base and adapter side by side.

The chart needs matplotlib (`pip install 'mft-recipes[plot]'`); without it the report says so.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mft_recipes import atomic_writer, write_text_atomic

CHART = "chart.png"
TOP_K = re.compile(r"top(\d+)_by_logprob")  # the ranking's scores: topK_by_logprob


def write_report(out: Path, result: dict[str, Any]) -> None:
    """Write report.md (and chart.png when matplotlib is installed) for `result` (metrics.json)."""
    chart_note = _write_chart(out / CHART, result)
    write_text_atomic(out / "report.md", markdown(result, chart_note))


def markdown(result: dict[str, Any], chart_note: str) -> str:
    names = list(result["models"])
    models = result["models"]
    lines = [
        f"# Evaluation: {result['task']}, {result['examples']} examples",
        "",
        f"Data: `{result['data']}`" + (f"; {result['labels']} labels" if result["labels"] else ""),
        "",
        *[
            f"- {name}: `{models[name]['model']}`"
            + (f" + LoRA `{models[name]['adapter']}`" if models[name]["adapter"] else "")
            for name in names
        ],
        "",
    ]
    if result["task"] == "classification":
        lines += _level_table(result)
    lines += _score_table(result)
    vllm = result["vllm"]
    lines += [
        "",
        f"## Speed ({vllm['distribution']} {vllm['version']}, {vllm['device']})",
        "",
        "| | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    speed_rows = [
        ("latency p50 (s)", lambda m: m["latency"] and m["latency"]["p50_s"]),
        ("latency p95 (s)", lambda m: m["latency"] and m["latency"]["p95_s"]),
        ("output tokens/s (batched)", lambda m: m["throughput"] and m["throughput"]["output_tokens_per_s"]),
        ("prompt tokens/s (batched)", lambda m: m["throughput"] and m["throughput"]["prompt_tokens_per_s"]),
    ]
    if result["task"] == "classification":
        speed_rows += [
            (f"ranking {result['labels']} labels: seconds per example", lambda m: _ranking(m, "seconds")),
            ("ranking: label-trie nodes per example", lambda m: _ranking(m, "nodes")),
            ("ranking: tokens computed per example", lambda m: _ranking(m, "scored_tokens")),
        ]
    for label, read in speed_rows:
        cells = [read(models[name]) for name in names]
        lines.append(f"| {label} | " + " | ".join("" if c is None else f"{c:.4g}" for c in cells) + " |")
    lines += ["", chart_note, ""]
    return "\n".join(lines)


def _ranking(model: dict[str, Any], what: str) -> float | None:
    ranking = model.get("ranking")
    return ranking[f"{what}_per_example"] if ranking else None


def _level_table(result: dict[str, Any]) -> list[str]:
    """Classification: accuracy per level, top-k of the ranking of every label, each model side by side
    (with the change when there are two), the last level being the full path."""
    models = result["models"]
    names = list(models)
    ks = sorted(int(match[1]) for key in models[names[0]]["levels"] if (match := TOP_K.fullmatch(key)))
    header = ["level", *(f"{name} top-{k}" for name in names for k in ks)]
    if len(names) == 2:
        header += [f"change top-{k}" for k in ks]
    depth = max(len(model["levels"][f"top{ks[0]}_by_logprob"]) for model in models.values())
    lines = [
        f"## Accuracy per level: the {result['labels']} labels ranked by log-probability",
        "",
        "At level i an example counts when one of its first k labels agrees with the reference on levels "
        "1 to i; the last level is the full path.",
        "",
        "| " + " | ".join(header) + " |",
        "|---|" + "---:|" * (len(header) - 1),
    ]
    for level in range(depth):
        values = [[models[name]["levels"][f"top{k}_by_logprob"][level] for k in ks] for name in names]
        cells = [f"{value:.3f}" for row in values for value in row]
        if len(names) == 2:
            cells += [f"{after - before:+.3f}" for before, after in zip(values[0], values[1], strict=True)]
        name = f"{level + 1}" + (" (full path)" if level + 1 == depth else "")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _score_table(result: dict[str, Any]) -> list[str]:
    """Every score, each model side by side, with the change when there are two; for a classification
    the scores of the answer generated under the label constraint (the ranking's are in _level_table)."""
    models = result["models"]
    names = list(models)
    header = ["metric", *names] + (["change"] if len(names) == 2 else [])
    rows: dict[str, list[float | None]] = {}
    for index, name in enumerate(names):
        scores: dict[str, float] = dict(models[name]["scores"])
        for label, per_level in models[name]["levels"].items():
            scores.update({f"{label}, level {level}": score for level, score in enumerate(per_level, 1)})
        for key, score in scores.items():
            if not TOP_K.match(key):
                rows.setdefault(key, [None] * len(names))[index] = score
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    if result["task"] == "classification":
        lines[:0] = ["## The answer generated under the label constraint (greedy)", ""]
    for key, values in rows.items():
        cells = [f"{value:.3f}" if value is not None else "" for value in values]
        before, after = values[0], values[-1]
        if len(values) == 2 and before is not None and after is not None:
            cells.append(f"{after - before:+.3f}")
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return lines


def _write_chart(path: Path, result: dict[str, Any]) -> str:
    try:
        import matplotlib
    except ImportError:
        return "No chart: matplotlib is not installed (`pip install 'mft-recipes[plot]'`)."
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["models"])
    first = result["models"][names[0]]
    per_level = first["levels"].get("accuracy") if result["task"] == "classification" else None
    if per_level:
        categories = [f"level {level}" for level in range(1, len(per_level) + 1)]
        values = {name: result["models"][name]["levels"]["accuracy"] for name in names}
        title = "Accuracy per label level"
    else:
        categories = list(first["scores"])
        values = {name: [result["models"][name]["scores"][key] for key in categories] for name in names}
        title = "Scores"
    figure, axes = plt.subplots(figsize=(max(4.0, 1.6 * len(categories)), 3.2))
    width = 0.8 / len(names)
    for offset, name in enumerate(names):
        positions = [i + offset * width for i in range(len(categories))]
        axes.bar(positions, values[name], width, label=name)
    axes.set_xticks([i + width * (len(names) - 1) / 2 for i in range(len(categories))], categories)
    axes.set_ylim(0, 1)
    axes.set_title(title)
    axes.legend()
    figure.tight_layout()
    with atomic_writer(path, "wb") as file:
        figure.savefig(file, format="png")
    plt.close(figure)
    return f"![{title}]({CHART})"
