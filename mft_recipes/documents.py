"""Documents on disk: loading YAML or JSON with the line of every key, and telling their kind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mft_recipes.problems import KeyPath


class DocumentError(Exception):
    """A file that cannot be read as a document; the message names the file and line."""


@dataclass(frozen=True)
class DocumentKind:
    """A kind of document `validate` knows: its schema and how to recognise one.

    `detect` looks at a loaded document and says whether it is of this kind; `schema` is a name in
    schemas/ or a path a plugin ships.
    """

    name: str
    schema: str | Path
    detect: Callable[[Any], bool]
    description: str = ""


@dataclass
class LoadedDocument:
    data: Any
    file: str
    lines: dict[KeyPath, int] = field(default_factory=dict)


def _line_map(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines[(*path, key)] = key_node.start_mark.line + 1
            _line_map(value_node, (*path, key), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _line_map(item, (*path, index), lines)


def parse_document(text: str, file: str) -> LoadedDocument:
    """Parse YAML (JSON is YAML) text into data plus the line of each key path."""
    # libyaml's loader when PyYAML was built with it: 7× faster on the recipes read at every start.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{file}:{mark.line + 1}" if mark else file
        problem = getattr(error, "problem", None) or str(error)
        raise DocumentError(f"{where}: not valid YAML or JSON: {problem}") from None
    finally:
        loader.dispose()
    lines: dict[KeyPath, int] = {}
    if node is not None:
        _line_map(node, (), lines)
    return LoadedDocument(data=data, file=file, lines=lines)


def load_document(path: str | Path) -> LoadedDocument:
    """Read a YAML or JSON file; `-` reads standard input."""
    import sys

    file = str(path)
    try:
        text = sys.stdin.read() if file == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DocumentError(f"{file}: cannot read: {error}") from None
    return parse_document(text, "<stdin>" if file == "-" else file)
