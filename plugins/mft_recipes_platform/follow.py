"""Following a job until it ends: status changes and each new checkpoint's step and losses.

On a terminal a spinner line shows the latest state; elsewhere (pipes, CI logs) one plain line per
change. Ctrl-C stops the following only: the job keeps running on La Plateforme, and no cancel request
is sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mft_recipes import plural

TERMINAL_STATUSES = frozenset({"SUCCESS", "FAILED", "FAILED_VALIDATION", "CANCELLED"})
FAILED_STATUSES = frozenset({"FAILED", "FAILED_VALIDATION", "CANCELLED"})


@dataclass
class FollowResult:
    """How following ended: `job` is the last state seen; `interrupted` when Ctrl-C stopped it."""

    job: dict[str, Any]
    interrupted: bool = False

    @property
    def waiting_for_start(self) -> bool:
        return self.job.get("status") == "VALIDATED" and self.job.get("auto_start") is False

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return 1 if self.job.get("status") in FAILED_STATUSES else 0


def checkpoint_line(checkpoint: dict[str, Any]) -> str:
    metrics = checkpoint.get("metrics") or {}
    parts = [f"step {checkpoint.get('step_number')}"]
    for name in ("train_loss", "valid_loss", "valid_mean_token_accuracy"):
        if metrics.get(name) is not None:
            parts.append(f"{name} {metrics[name]:.4f}")
    return "  ".join(parts)


def cost_line(job: dict[str, Any]) -> str | None:
    """The server's estimate: cost, expected duration, tokens (from the job's metadata)."""
    metadata = job.get("metadata") or {}
    parts = []
    if metadata.get("cost") is not None:
        parts.append(f"expected cost {metadata['cost']:g} {metadata.get('cost_currency') or ''}".rstrip())
    if metadata.get("expected_duration_seconds") is not None:
        parts.append(f"expected duration {_duration(metadata['expected_duration_seconds'])}")
    if metadata.get("train_tokens") is not None:
        parts.append(plural(metadata["train_tokens"], "training token"))
    return ", ".join(parts) or None


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def pause(seconds: float) -> None:
    """Wait between polls (a module function, so tests can stand in for the wait, or for a Ctrl-C)."""
    time.sleep(seconds)


def follow_job(
    get_job: Callable[[], dict[str, Any]],
    say: Callable[[str], None],
    interval: float,
    show: Callable[[str], None] | None = None,
) -> FollowResult:
    """Poll `get_job` every `interval` seconds until the job ends (or waits for `start`).

    `say` prints a line that stays; `show`, on a terminal, updates the one transient status line.
    """
    job: dict[str, Any] = {}
    status = None
    checkpoints_seen: set[Any] = set()
    try:
        while True:
            job = get_job()
            if job.get("status") != status:
                status = job.get("status")
                say(f"status {status}")
                estimate = cost_line(job)
                if status == "VALIDATED" and estimate:
                    say(estimate)
            for checkpoint in sorted(job.get("checkpoints") or [], key=lambda c: c.get("step_number") or 0):
                if checkpoint.get("step_number") not in checkpoints_seen:
                    checkpoints_seen.add(checkpoint.get("step_number"))
                    say(checkpoint_line(checkpoint))
            result = FollowResult(job)
            if status in TERMINAL_STATUSES or result.waiting_for_start:
                return result
            if show is not None:
                show(f"{job.get('id')}: {status}")
            pause(interval)
    except KeyboardInterrupt:
        return FollowResult(job, interrupted=True)
