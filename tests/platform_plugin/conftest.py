"""Fixtures for the La Plateforme tests: the stand-in server, a CLI runner that scans every output for
the keys, and a retry clock that records backoff instead of sleeping."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tests.platform_plugin.stand_in import StandInPlatform

pytest.importorskip("mistralai.client.fine_tuning", reason="needs mistralai 2.0-2.5.1 (the platform extra)")

API_KEY = "sk-test-5f3c9a7e1b2d4c6e8a0b"
WANDB_KEY = "wandb-test-0123456789abcdef0123456789abcdef"
CHAT_LINES = [
    {"messages": [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"}]},
    {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Capital of France?"},
            {"role": "assistant", "content": "Paris"},
        ]
    },
]


@pytest.fixture
def server() -> Iterator[StandInPlatform]:
    platform = StandInPlatform(API_KEY).start()
    yield platform
    platform.stop()


@dataclass
class RetryClock:
    """Stands in for time in the retry loop: `sleep` advances `now` and records each delay."""

    now_s: float = 0.0
    delays: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.now_s += seconds

    def now(self) -> float:
        return self.now_s


@pytest.fixture
def retry_clock(monkeypatch: pytest.MonkeyPatch) -> RetryClock:
    from mft_recipes_platform import commands
    from mft_recipes_platform.retries import RetryPolicy

    clock = RetryClock()
    monkeypatch.setattr(commands, "RetryPolicy", partial(RetryPolicy, sleep=clock.sleep, clock=clock.now))
    return clock


@pytest.fixture
def data(tmp_path: Path) -> dict[str, Path]:
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(line) + "\n" for line in CHAT_LINES), encoding="utf-8")
    valid = tmp_path / "valid.jsonl"
    valid.write_text(json.dumps(CHAT_LINES[0]) + "\n", encoding="utf-8")
    return {"train": train, "valid": valid}


@pytest.fixture
def run(
    tmp_path: Path, server: StandInPlatform, retry_clock: RetryClock, caplog: pytest.LogCaptureFixture
) -> Callable[..., Result]:
    """Invoke `mft-recipes platform ARGS` against the stand-in; fails the test if any output or log
    record shows a key.

    MISTRAL_DEBUG is set on purpose: it makes the SDK log request headers, which must stay silent.
    """
    from mft_recipes_platform.commands import platform

    caplog.set_level(logging.DEBUG)
    manifest = tmp_path / "manifest.json"

    def invoke(*args: str, env: dict[str, Any] | None = None, server_url: bool = True) -> Result:
        environment = {
            "MISTRAL_API_KEY": API_KEY,
            "MFT_RECIPES_PLATFORM_MANIFEST": str(manifest),
            "MISTRAL_DEBUG": "1",
            "WANDB_API_KEY": None,
            "MISTRAL_SERVER_URL": None,
        }
        environment.update(env or {})
        arguments = [*args, "--server-url", server.url] if server_url else list(args)
        result = CliRunner().invoke(platform, arguments, env=environment)
        for text in (result.stdout, result.stderr, repr(result.exception or ""), caplog.text):
            assert API_KEY not in text and WANDB_KEY not in text, f"a key was printed: {text}"
        if isinstance(result.exception, Exception) and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result

    return invoke
