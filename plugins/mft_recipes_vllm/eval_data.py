"""What `eval` is asked: the test conversations (chat JSONL, the last assistant message the reference),
the label set of a classification, and the task."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TASKS = ("generation", "classification")


class EvalError(ValueError):
    """Input eval read and found invalid (data, labels, adapter, a model it cannot start); the message
    names the file and line, or the model and vLLM's reason."""


class EvalUsageError(EvalError):
    """What eval was asked cannot be done as asked: vLLM not installed, a model path that does not exist,
    an output folder holding another run, an engine setting the model or the data cannot take."""


@dataclass
class Example:
    """One test conversation: the messages up to the last assistant turn, that turn as the reference, the
    tools the conversation defines, and its line in the file."""

    index: int
    messages: list[dict[str, Any]]
    reference: str
    tools: list[Any] | None = None
    line: int = 0


@dataclass
class Task:
    """What to ask and how to score it."""

    kind: str
    labels: list[str] = field(default_factory=list)
    top_k: tuple[int, ...] = (1, 3)
    max_tokens: int = 256


def read_examples(path: str | Path) -> list[Example]:
    """Read a chat JSONL test file ({"messages": [...]} a line); the last message must be the assistant's."""
    examples: list[Example] = []
    with Path(path).open("rb") as file:
        for number, raw in enumerate(file, 1):
            where = f"{path}:{number}"
            try:
                line = raw.decode("utf-8")
                record = json.loads(line) if line.strip() else None
            except UnicodeDecodeError as error:
                raise EvalError(f"{where}: not UTF-8 text ({error.reason} at byte {error.start})") from error
            except json.JSONDecodeError as error:
                raise EvalError(f"{where}: not JSON ({error.msg})") from error
            if record is None:
                continue
            messages = record.get("messages") if isinstance(record, dict) else None
            if (
                not isinstance(messages, list)
                or len(messages) < 2
                or not all(isinstance(m, dict) for m in messages)
            ):
                raise EvalError(
                    f'{where}: expected {{"messages": [...]}} with a prompt and an assistant answer'
                )
            if messages[-1].get("role") != "assistant" or not isinstance(messages[-1].get("content"), str):
                raise EvalError(f"{where}: the last message must be the assistant's answer (the reference)")
            tools = record.get("tools") or None
            examples.append(Example(len(examples), messages[:-1], messages[-1]["content"], tools, number))
    if not examples:
        raise EvalError(f"{path}: no examples")
    return examples


def read_labels(path: str | Path) -> list[str]:
    """A label set file: one label a line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise EvalError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from error
    labels = [line.strip() for line in text.splitlines() if line.strip()]
    if not labels:
        raise EvalError(f"{path}: no labels (one a line)")
    return labels
