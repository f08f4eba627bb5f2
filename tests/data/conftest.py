"""Helpers for the data tests: JSONL files written from examples or raw lines, and the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

pytest.importorskip(
    "mistral_common", reason="the data checks count tokens with mistral-common (the dev extra)"
)

Line = dict[str, Any] | list[Any] | str | bytes


def chat(*turns: str, system: str | None = None) -> dict[str, Any]:
    """A conversation from alternating user/assistant texts."""
    messages = [{"role": "system", "content": system}] if system else []
    roles = ("user", "assistant")
    messages += [{"role": roles[index % 2], "content": text} for index, text in enumerate(turns)]
    return {"messages": messages}


def encode_line(line: Line) -> bytes:
    if isinstance(line, bytes):
        return line
    if isinstance(line, str):
        return line.encode("utf-8")
    return json.dumps(line, ensure_ascii=False).encode("utf-8")


@pytest.fixture
def jsonl(tmp_path: Path) -> Callable[..., Path]:
    """`jsonl(line, ..., name="x.jsonl")` writes one line per argument: an example (dict or list) as
    JSON, a str or bytes as it is."""
    counter = iter(range(10_000))

    def write(*lines: Line, name: str | None = None) -> Path:
        path = tmp_path / (name or f"data-{next(counter)}.jsonl")
        path.write_bytes(b"".join(encode_line(line) + b"\n" for line in lines))
        return path

    return write


def data_cli(*args: str) -> Result:
    """`mft-recipes data ARGS` in process."""
    from mft_recipes_data.commands import data

    return CliRunner().invoke(data, list(args))
