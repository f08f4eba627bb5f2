"""The steps after training, as plugins contribute them: exporters (`register_exporters`) and evaluation
metrics (`register_metrics`).

Both are plain values so that the host can list them without importing what they run: an exporter's
`export` and a metric's `compute` import their heavy libraries only when called.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Exporter:
    """Turns a trained adapter into what a server loads, and says how to serve it.

    `export(adapter_dir, base=..., merge=..., output=..., **options)` returns a JSON-able dict: what was
    decided and why, what was written, and the command that serves it.
    """

    name: str
    description: str
    export: Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class Metric:
    """A score over predictions and their references, one number in [0, 1] unless `description` says so.

    `compute(predictions, references)` takes the texts in the same order. `tasks` names the evaluation
    tasks it applies to ("generation", "classification").
    """

    name: str
    description: str
    compute: Callable[[Sequence[str], Sequence[str]], float]
    tasks: tuple[str, ...] = field(default=("generation",))
