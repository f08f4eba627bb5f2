"""report.md and chart.png of an eval: base and adapter side by side.

The chart needs matplotlib (`pip install 'mft-recipes[plot]'`); without it the report says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mft_recipes import atomic_writer, write_text_atomic

CHART = "chart.png"


def write_report(out: Path, result: dict[str, Any]) -> None:
    """Write report.md (and chart.png when matplotlib is installed) for `result` (metrics.json)."""
    chart_note = _write_chart(out / CHART, result)
    write_text_atomic(out / "report.md", markdown(result, chart_note))


def markdown(result: dict[str, Any], chart_note: str) -> str:
    names = list(result["models"])
    models = result["models"]
    header = ["metric", *names] + (["change"] if len(names) == 2 else [])
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
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    rows: dict[str, list[float | None]] = {}
    for index, name in enumerate(names):
        scores: dict[str, float] = dict(models[name]["scores"])
        for label, per_level in models[name]["levels"].items():
            scores.update({f"{label}, level {level}": score for level, score in enumerate(per_level, 1)})
        for key, score in scores.items():
            rows.setdefault(key, [None] * len(names))[index] = score
    for key, values in rows.items():
        cells = [f"{value:.3f}" if value is not None else "" for value in values]
        before, after = values[0], values[-1]
        if len(values) == 2 and before is not None and after is not None:
            cells.append(f"{after - before:+.3f}")
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
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
    for label, read in speed_rows:
        cells = [read(models[name]) for name in names]
        lines.append(f"| {label} | " + " | ".join("" if c is None else f"{c:.4g}" for c in cells) + " |")
    lines += ["", chart_note, ""]
    return "\n".join(lines)


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
