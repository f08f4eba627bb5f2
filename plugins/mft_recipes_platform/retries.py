"""Retrying La Plateforme calls: transient failures with bounded backoff, the others never.

The SDK's own retry helper sleeps a random 0-1 s on top of every backoff, cannot be bounded per call
in tests, and does not count a dropped connection (httpx.RemoteProtocolError) as transient, so the
plugin keeps its own small loop and turns the SDK's retries off. The loop stops when the next wait
would end past the policy's budget (`--timeout`), so a dead server is given up on within it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from mft_recipes import plural

T = TypeVar("T")

TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class PlatformError(Exception):
    """A call that failed for good; the message says what happened and what to do (and holds no key)."""

    def __init__(self, message: str, status: int | None = None, detail: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


class PlatformUsageError(PlatformError):
    """What the command line or the machine lacks, found before any request: no API key, an unreadable
    key file, no mistralai SDK. The commands exit 2 on it."""


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: `first_delay`, times `factor` each try, at most `max_delay`, and no new try
    once `budget` seconds have passed since the first. `sleep` and `clock` are injectable for tests."""

    first_delay: float = 1.0
    factor: float = 2.0
    max_delay: float = 30.0
    budget: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def delays(self) -> Callable[[int, float | None], float | None]:
        """A function (attempt, retry_after) → seconds to wait, or None when the budget is spent."""
        start = self.clock()

        def next_delay(attempt: int, retry_after: float | None) -> float | None:
            delay = min(self.max_delay, self.first_delay * self.factor**attempt)
            if retry_after is not None:
                delay = min(self.max_delay, max(delay, retry_after))
            if self.clock() - start + delay > self.budget:
                return None
            return delay

        return next_delay


def status_of(error: BaseException) -> int | None:
    """The HTTP status of an SDK error (mistralai.client.errors.MistralError), else None."""
    status = getattr(error, "status_code", None)
    return status if isinstance(status, int) else None


def is_transient(error: BaseException) -> bool:
    """Connection problems (refused, reset, dropped, timed out) and 408/429/5xx answers."""
    import httpx

    if isinstance(error, httpx.TransportError):
        return True
    status = status_of(error)
    return status is not None and status in TRANSIENT_STATUS


def retry_after_seconds(error: BaseException) -> float | None:
    headers = getattr(error, "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def call_with_retries(
    what: str,
    call: Callable[[], T],
    policy: RetryPolicy,
    on_retry: Callable[[str], None] = lambda message: None,
    before_retry: Callable[[], T | None] | None = None,
) -> T:
    """Run `call`; retry it on transient failures while the policy's budget lasts.

    `before_retry`, when given, runs before each new try and may return a result that makes the try
    unnecessary (a job that a lost answer had created already); if it fails transiently, that counts as
    a failed try. `on_retry` hears one line per retry.
    """
    next_delay = policy.delays()
    attempt = 0
    while True:
        try:
            if attempt and before_retry is not None:
                found = before_retry()
                if found is not None:
                    return found
            return call()
        except Exception as error:
            if not is_transient(error):
                raise
            delay = next_delay(attempt, retry_after_seconds(error))
            if delay is None:
                raise PlatformError(
                    f"{what}: {describe_transient(error)}; gave up after {plural(attempt + 1, 'try')} within "
                    f"{policy.budget:g} s; check --server-url, or try again later (--timeout allows longer)",
                    status_of(error),
                ) from None
            on_retry(f"{what}: {describe_transient(error)}; retrying in {delay:.1f} s")
            policy.sleep(delay)
            attempt += 1


def describe_transient(error: BaseException) -> str:
    status = status_of(error)
    if status is not None:
        return f"HTTP {status}"
    kind = type(error).__name__
    return f"no answer (a connection problem: {kind}: {error})" if str(error) else f"no answer ({kind})"
