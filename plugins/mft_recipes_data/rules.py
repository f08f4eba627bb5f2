"""The rules a training example must follow, each with a stable code.

Chat examples follow what axolotl's `chat_template` datasets and La Plateforme both take: a `messages`
list with roles system/user/assistant/tool, at most one system message and only first, user and assistant
in turn, the assistant last, non-empty string contents, tool calls with 9-character ids answered by tool
messages, `weight` 0 or 1 on assistant messages only, and every called tool defined in `tools`.
Classifier examples (La Plateforme) carry `text` or `messages` plus `labels`.

The checks here are pure Python on the parsed JSON, so they run in worker processes and never crash on
arbitrary input: whatever the value, the result is a list of findings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mft_recipes import KeyPath

# code → (severity, what it means). Codes are stable: scripts and the JSON output rely on them.
CODES: dict[str, tuple[str, str]] = {
    "E_ENCODING": ("error", "the line is not UTF-8 text"),
    "E_JSON": ("error", "the line is not valid JSON"),
    "E_NOT_OBJECT": ("error", "the line is JSON but not an object"),
    "E_NO_MESSAGES": ("error", "no `messages` list, or an empty one"),
    "E_MESSAGE_NOT_OBJECT": ("error", "a message is not an object"),
    "E_ROLE": ("error", "a message has no role or an unknown one"),
    "E_SYSTEM_POSITION": ("error", "a system message that is not the first message"),
    "E_SYSTEM_MULTIPLE": ("error", "more than one system message"),
    "E_ROLE_ORDER": (
        "error",
        "roles out of order (user and assistant must take turns; tool results follow calls)",
    ),
    "E_LAST_ROLE": ("error", "the last message is not from the assistant"),
    "E_CONTENT_MISSING": ("error", "a message without content (and, for the assistant, without tool calls)"),
    "E_CONTENT_TYPE": ("error", "content that is not a string"),
    "E_CONTENT_EMPTY": ("error", "empty or blank content in a system, user or tool message"),
    "E_EMPTY_ASSISTANT": ("error", "an assistant turn that is empty after stripping whitespace"),
    "E_CONTENT_AND_TOOL_CALLS": ("error", "an assistant message with both text content and tool calls"),
    "E_TOOL_CALL": ("error", "a malformed tool call (needs function.name and function.arguments)"),
    "E_TOOL_CALL_ID": ("error", "a tool call id or tool_call_id that is not 9 letters or digits"),
    "E_TOOL_RESULT_MISSING": ("error", "a tool call with no tool message answering it"),
    "E_TOOL_CALL_ID_UNKNOWN": ("error", "a tool message whose tool_call_id matches no pending call"),
    "E_TOOLS": ("error", "a malformed top-level `tools` list"),
    "E_TOOL_UNDEFINED": ("error", "a call to a tool that `tools` does not define"),
    "E_WEIGHT": ("error", "`weight` other than 0 or 1, or on a message that is not from the assistant"),
    "E_TEXT": ("error", "a classifier example without a non-empty `text` (or with both text and messages)"),
    "E_LABELS": ("error", "a classifier example without a `labels` object"),
    "E_LABEL_VALUE": ("error", "a label that is not a non-empty string or a list of them"),
    "E_TOKENIZER": ("error", "the model's tokenizer cannot encode the example"),
    "E_ANSWER_PATH": (
        "error",
        "a classifier recipe's answer that is not a category path of its levels, written 'A > B > C'",
    ),
    "E_EMPTY_FILE": ("error", "a file without a single example"),
    "E_NOTHING_TRAINS": (
        "error",
        "a training file none of whose valid examples would train (over sequence_len, every answer at weight 0)",
    ),
    "E_JSON_ARRAY": ("error", "the file is one JSON array, not JSON Lines (one example per line)"),
    "E_OTHER_FORMAT": ("error", "ShareGPT or Alpaca records: `data convert --from` turns them into chat"),
    "E_GZIP": ("error", "a gzip file whose stream is damaged or truncated"),
    "E_FILE_TOO_LARGE": ("error", "over La Plateforme's size limit (512 MB training, 1 MB validation)"),
    "W_FILE_TOO_LARGE": (
        "warning",
        "over La Plateforme's size limit (a warning unless checking for La Plateforme)",
    ),
    "W_BLANK_LINE": ("warning", "a blank line (skipped by --write-clean)"),
    "W_UNKNOWN_KEY": (
        "warning",
        "a key the format does not define: the trainers drop it (it is not counted)",
    ),
    "W_NO_TRAINED_TURN": ("warning", "every assistant message has weight 0: the example trains nothing"),
    "W_DUPLICATE": ("warning", "the same line as an earlier example (an exact duplicate)"),
    "W_TOO_LONG": ("warning", "longer than the recipe's sequence_len (dropped or truncated by the trainer)"),
    "W_RARE_LEAF": (
        "warning",
        "a classifier recipe's leaves (whole category paths) with fewer training examples than it asks for",
    ),
    "W_UNSEEN_LEAF": ("warning", "validation answers whose leaf no training example has"),
}

ROLES = ("system", "user", "assistant", "tool")
CHAT_KEYS = frozenset(("messages", "tools"))
CLASSIFIER_KEYS = frozenset(("text", "messages", "labels"))
MESSAGE_KEYS = {
    "system": frozenset(("role", "content")),
    "user": frozenset(("role", "content")),
    "assistant": frozenset(("role", "content", "tool_calls", "weight")),
    "tool": frozenset(("role", "content", "tool_call_id", "name")),
}
TOOL_CALL_ID = re.compile(r"[A-Za-z0-9]{9}")
FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class Finding:
    """One rule broken by one example: a code from CODES, the key path inside the example, a message."""

    code: str
    path: KeyPath
    message: str

    @property
    def severity(self) -> str:
        return CODES[self.code][0]


def check_chat(example: Any) -> list[Finding]:
    """Every rule a chat example breaks (empty when it is valid)."""
    if not isinstance(example, dict):
        return [Finding("E_NOT_OBJECT", (), f"expected a JSON object, got {_kind(example)}")]
    findings = _unknown_keys(example, CHAT_KEYS, ())
    tool_names, tool_findings = _tool_names(example)
    findings += tool_findings
    messages = example.get("messages")
    if not isinstance(messages, list) or not messages:
        got = "nothing" if messages is None else _kind(messages)
        return [
            *findings,
            Finding("E_NO_MESSAGES", ("messages",), f"expected a non-empty list of messages, got {got}"),
        ]
    findings += _check_messages(messages, tool_names, final_assistant=True)
    return findings


def check_classifier(example: Any) -> list[Finding]:
    """Every rule a classifier example breaks (empty when it is valid)."""
    if not isinstance(example, dict):
        return [Finding("E_NOT_OBJECT", (), f"expected a JSON object, got {_kind(example)}")]
    findings = _unknown_keys(example, CLASSIFIER_KEYS, ())
    text, messages = example.get("text"), example.get("messages")
    if "text" in example and "messages" in example:
        findings.append(Finding("E_TEXT", (), "give either `text` or `messages`, not both"))
    elif "messages" in example:
        if not isinstance(messages, list) or not messages:
            findings.append(Finding("E_NO_MESSAGES", ("messages",), "expected a non-empty list of messages"))
        else:
            findings += _check_messages(messages, None, final_assistant=False)
    elif not isinstance(text, str) or not text.strip():
        got = "nothing" if text is None else repr(text) if isinstance(text, str) else _kind(text)
        findings.append(Finding("E_TEXT", ("text",), f"expected a non-empty string in `text`, got {got}"))
    labels = example.get("labels")
    if not isinstance(labels, dict) or not labels:
        got = "nothing" if labels is None else _kind(labels)
        findings.append(
            Finding("E_LABELS", ("labels",), f'expected an object like {{"category": "books"}}, got {got}')
        )
        return findings
    for target, value in labels.items():
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(label, str) and label.strip() for label in values):
            findings.append(
                Finding(
                    "E_LABEL_VALUE",
                    ("labels", target),
                    f"label of target {target!r} must be a non-empty string or a list of them, got {value!r:.80}",
                )
            )
    return findings


def label_values(example: dict[str, Any]) -> dict[str, list[str]]:
    """The labels of a valid classifier example, each target's value as a list."""
    return {
        target: value if isinstance(value, list) else [value] for target, value in example["labels"].items()
    }


def classifier_text(example: dict[str, Any]) -> str:
    """What a classifier example's model reads: its text, or its messages' contents joined."""
    if "text" in example:
        return str(example["text"])
    return "\n\n".join(str(message["content"]) for message in example["messages"])


def _check_messages(
    messages: list[Any], tool_names: set[str] | None, *, final_assistant: bool
) -> list[Finding]:
    findings: list[Finding] = []
    state = _Order(tool_names)
    for index, message in enumerate(messages):
        path: KeyPath = ("messages", index)
        if not isinstance(message, dict):
            findings.append(
                Finding("E_MESSAGE_NOT_OBJECT", path, f"expected an object, got {_kind(message)}")
            )
            state.broken = True
            continue
        role = message.get("role")
        if role not in ROLES:
            findings.append(
                Finding(
                    "E_ROLE", (*path, "role"), f"role must be one of {', '.join(ROLES)}, got {role!r:.40}"
                )
            )
            state.broken = True
            continue
        findings += _unknown_keys(message, MESSAGE_KEYS[role], path)
        findings += _check_content(message, role, path)
        findings += _check_weight(message, role, path)
        if final_assistant:
            findings += state.step(index, message, role)
    if final_assistant:
        findings += state.finish(messages)
    return findings


class _Order:
    """The order rules, walked message by message: system first, user and assistant in turn, tool calls
    answered by tool messages (one per call id) and then by the assistant, the assistant last."""

    def __init__(self, tool_names: set[str] | None) -> None:
        self.tool_names = tool_names
        self.previous: str | None = None
        self.seen_system = False
        self.pending: dict[str, int] = {}  # call id → index of the assistant message that made the call
        self.weights: list[Any] = []
        self.broken = False

    def step(self, index: int, message: dict[str, Any], role: str) -> list[Finding]:
        path: KeyPath = ("messages", index)
        findings: list[Finding] = []
        if self.broken:  # after a malformed message the order cannot be judged
            return findings
        if role == "system":
            if self.seen_system:
                findings.append(Finding("E_SYSTEM_MULTIPLE", path, "only one system message is allowed"))
            elif index > 0:
                findings.append(
                    Finding("E_SYSTEM_POSITION", path, "the system message must be the first message")
                )
            self.seen_system = True
            return findings
        answered = not (role != "tool" and self.pending)
        if not answered:
            findings.append(self._missing_results(path))
        allowed = {
            None: ("user",),
            "system": ("user",),
            "user": ("assistant",),
            "assistant": ("user",),
            "tool": ("tool",) if self.pending else ("assistant",),
            "assistant+calls": ("tool",),
        }[self.previous]
        if answered and role not in allowed:
            before = (
                "the start"
                if self.previous is None
                else f"{_an(self.previous.replace('+calls', ' with tool calls'))} message"
            )
            findings.append(
                Finding(
                    "E_ROLE_ORDER",
                    (*path, "role"),
                    f"{_an(role)} message cannot follow {before}; expected {' or '.join(allowed)}",
                )
            )
        if role == "assistant":
            self.weights.append(message.get("weight", 1))
            findings += self._calls(message, path)
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or not TOOL_CALL_ID.fullmatch(call_id):
                findings.append(
                    Finding(
                        "E_TOOL_CALL_ID",
                        (*path, "tool_call_id"),
                        f"tool_call_id must be the 9-letter-or-digit id of the call it answers, got {call_id!r:.40}",
                    )
                )
            elif call_id not in self.pending:
                findings.append(
                    Finding(
                        "E_TOOL_CALL_ID_UNKNOWN",
                        (*path, "tool_call_id"),
                        f"tool_call_id {call_id!r} answers no pending tool call"
                        + (f" (pending: {', '.join(self.pending)})" if self.pending else ""),
                    )
                )
            else:
                del self.pending[call_id]
        self.previous = "assistant+calls" if role == "assistant" and self.pending else role
        return findings

    def finish(self, messages: list[Any]) -> list[Finding]:
        findings: list[Finding] = []
        last = len(messages) - 1
        if self.pending:
            findings.append(self._missing_results(("messages", last)))
        if self.broken:
            return findings
        if self.previous not in ("assistant", "assistant+calls"):
            findings.append(
                Finding(
                    "E_LAST_ROLE",
                    ("messages", last),
                    f"the last message must be from the assistant, got {self.previous}",
                )
            )
        elif self.weights and all(weight == 0 for weight in self.weights):
            findings.append(
                Finding("W_NO_TRAINED_TURN", ("messages",), "every assistant message has weight 0")
            )
        return findings

    def _missing_results(self, path: KeyPath) -> Finding:
        ids = ", ".join(f"{call_id} (message {index})" for call_id, index in self.pending.items())
        self.pending.clear()
        return Finding(
            "E_TOOL_RESULT_MISSING", path, f"tool calls without a tool message answering them: {ids}"
        )

    def _calls(self, message: dict[str, Any], path: KeyPath) -> list[Finding]:
        calls = message.get("tool_calls")
        if calls is None:
            return []
        if not isinstance(calls, list) or not calls:
            return [Finding("E_TOOL_CALL", (*path, "tool_calls"), "tool_calls must be a non-empty list")]
        findings: list[Finding] = []
        for number, call in enumerate(calls):
            call_path: KeyPath = (*path, "tool_calls", number)
            function = call.get("function") if isinstance(call, dict) else None
            name = function.get("name") if isinstance(function, dict) else None
            arguments = function.get("arguments") if isinstance(function, dict) else None
            if (
                not isinstance(name, str)
                or not FUNCTION_NAME.fullmatch(name)
                or not isinstance(arguments, (str, dict))
            ):
                findings.append(
                    Finding(
                        "E_TOOL_CALL",
                        call_path,
                        'expected {"id": ..., "type": "function", "function": {"name": ..., "arguments": ...}} with a '
                        "name of letters, digits, _ or - (at most 64) and arguments as a JSON string",
                    )
                )
                continue
            if self.tool_names is not None and name not in self.tool_names:
                defined = ", ".join(sorted(self.tool_names)) or "none"
                findings.append(
                    Finding(
                        "E_TOOL_UNDEFINED",
                        (*call_path, "function", "name"),
                        f"tool {name!r} is not defined in the example's `tools` (defined: {defined})",
                    )
                )
            call_id = call.get("id")
            if not isinstance(call_id, str) or not TOOL_CALL_ID.fullmatch(call_id):
                findings.append(
                    Finding(
                        "E_TOOL_CALL_ID",
                        (*call_path, "id"),
                        f"a tool call id must be 9 letters or digits, got {call_id!r:.40}",
                    )
                )
            else:
                self.pending[call_id] = int(path[1])
        return findings


def _check_content(message: dict[str, Any], role: str, path: KeyPath) -> list[Finding]:
    content = message.get("content")
    calls = message.get("tool_calls") if role == "assistant" else None
    if calls:
        if isinstance(content, str) and content.strip():
            return [
                Finding(
                    "E_CONTENT_AND_TOOL_CALLS",
                    (*path, "content"),
                    "an assistant message carries either text content or tool_calls, not both",
                )
            ]
        if content is not None and not isinstance(content, str):
            return [
                Finding(
                    "E_CONTENT_TYPE", (*path, "content"), f"content must be a string, got {_kind(content)}"
                )
            ]
        return []
    if content is None:
        return [Finding("E_CONTENT_MISSING", path, f"a {role} message needs a string `content`")]
    if not isinstance(content, str):
        return [
            Finding("E_CONTENT_TYPE", (*path, "content"), f"content must be a string, got {_kind(content)}")
        ]
    if not content.strip():
        code = "E_EMPTY_ASSISTANT" if role == "assistant" else "E_CONTENT_EMPTY"
        return [
            Finding(
                code,
                (*path, "content"),
                f"the {role} message's content is empty after stripping ({content!r:.20})",
            )
        ]
    return []


def _check_weight(message: dict[str, Any], role: str, path: KeyPath) -> list[Finding]:
    if "weight" not in message:
        return []
    weight = message["weight"]
    if role != "assistant":
        return [
            Finding(
                "E_WEIGHT", (*path, "weight"), f"weight is only allowed on assistant messages, not {role}"
            )
        ]
    if isinstance(weight, bool) or weight not in (0, 1):
        return [Finding("E_WEIGHT", (*path, "weight"), f"weight must be 0 or 1, got {weight!r:.20}")]
    return []


def _tool_names(example: dict[str, Any]) -> tuple[set[str], list[Finding]]:
    tools = example.get("tools")
    if tools is None:
        return set(), []
    if not isinstance(tools, list):
        return set(), [Finding("E_TOOLS", ("tools",), f"tools must be a list, got {_kind(tools)}")]
    names: set[str] = set()
    findings = []
    for index, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or not FUNCTION_NAME.fullmatch(name):
            findings.append(
                Finding(
                    "E_TOOLS",
                    ("tools", index),
                    'expected {"type": "function", "function": {"name": ..., "description": ..., "parameters": {...}}}',
                )
            )
        else:
            names.add(name)
    return names, findings


def _unknown_keys(mapping: dict[str, Any], known: frozenset[str], path: KeyPath) -> list[Finding]:
    return [
        Finding(
            "W_UNKNOWN_KEY",
            (*path, str(key)),
            f"unknown key {key!r:.40}, which the trainers drop (known: {', '.join(sorted(known))})",
        )
        for key in mapping
        if key not in known
    ]


def _an(word: str) -> str:
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)
