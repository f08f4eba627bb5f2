"""The results folder of an eval run, written as the run goes, so that an interrupted run resumes.

run.json holds what the run was asked (a resumed run must be asked the same), written with the first
results, so a run that stops before any (an engine that does not start) leaves nothing behind;
predictions.jsonl gets each batch of predictions as soon as it is computed and timings.jsonl how long it
took, whole lines made durable before anything counts on them. A resumed run reads them back (a last
line cut short by the interruption is dropped) and recomputes nothing that is there. metrics.json is
written at the end.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mft_recipes import write_text_atomic
from mft_recipes_vllm.eval_data import EvalUsageError

PREDICTIONS, TIMINGS, RUN, METRICS = "predictions.jsonl", "timings.jsonl", "run.json", "metrics.json"


class RunLog:
    """The results folder of one run: what is already done, and appending what gets done."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.predictions: list[dict[str, Any]] = []
        self.timings: list[dict[str, Any]] = []
        self.unwritten_run: dict[str, Any] | None = None

    def start(self, run: dict[str, Any], resume: bool) -> None:
        """Start the run `run` describes, or with `resume` go on with the one the folder holds (which
        must have been asked the same). Reads what is done; the lists then follow the files."""
        run_file = self.folder / RUN
        if run_file.is_file():
            if not resume:
                raise EvalUsageError(
                    f"{self.folder} holds an earlier run ({RUN}); pass --resume to finish it, or choose "
                    "another -o"
                )
            earlier = json.loads(run_file.read_text(encoding="utf-8"))
            changed = sorted(key for key in set(run) | set(earlier) if run.get(key) != earlier.get(key))
            if changed:
                raise EvalUsageError(
                    f"--resume: {self.folder} was started with other {', '.join(changed)}; use the same "
                    "options or another -o"
                )
        else:
            self.unwritten_run = run
        self.predictions = _read_jsonl(self.folder / PREDICTIONS)
        self.timings = _read_jsonl(self.folder / TIMINGS)

    def done(self, variant: str) -> set[int]:
        """The indices of the examples `variant` has predictions for."""
        return {record["index"] for record in self.predictions if record["model"] == variant}

    def has_latency(self, variant: str) -> bool:
        return any(t["model"] == variant and t["kind"] == "latency" for t in self.timings)

    def add(self, predictions: list[dict[str, Any]], timing: dict[str, Any]) -> None:
        """Append predictions (none for a latency timing) and their timing, predictions first."""
        self._write_run()
        if predictions:
            _append_jsonl(self.folder / PREDICTIONS, predictions)
        _append_jsonl(self.folder / TIMINGS, [timing])
        self.predictions.extend(predictions)
        self.timings.append(timing)

    def write_metrics(self, result: dict[str, Any]) -> None:
        self._write_run()
        write_text_atomic(self.folder / METRICS, json.dumps(result, indent=2) + "\n")

    def _write_run(self) -> None:
        if self.unwritten_run is not None:
            write_text_atomic(self.folder / RUN, json.dumps(self.unwritten_run, indent=2) + "\n")
            self.unwritten_run = None


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The complete records of a results file; a last line cut short by an interruption is dropped."""
    if not path.is_file():
        return []
    records = []
    with path.open("rb+") as file:
        good = 0
        for line in file:
            if not line.endswith(b"\n"):
                break
            records.append(json.loads(line))
            good += len(line)
        file.truncate(good)
    return records


def _append_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    """Append whole lines and make them durable before anything counts on them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as file:
        file.write("".join(json.dumps(record) + "\n" for record in records))
        file.flush()
        os.fsync(file.fileno())
