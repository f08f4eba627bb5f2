"""Recipe files: loading them, checking them against schemas/recipe.schema.json, resolving parameters."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mft_recipes.documents import DocumentError, load_document
from mft_recipes.schemas import check_against_schema


class RecipeError(Exception):
    """A recipe file that is not a valid recipe; the message names the file, line and key."""


class ParameterError(Exception):
    """Overrides that do not fit the recipe: an unknown name, a bad value, a missing required one."""


@dataclass(frozen=True)
class RecipeParameter:
    """A typed knob of a recipe. `schema` is a JSON Schema fragment that values must satisfy."""

    name: str
    help: str
    schema: dict[str, Any]
    default: Any = None
    required: bool = False

    @property
    def type_name(self) -> str:
        kind = self.schema.get("type", "any")
        if "enum" in self.schema:
            return " | ".join(map(str, self.schema["enum"]))
        return " or ".join(kind) if isinstance(kind, list) else str(kind)


@dataclass(frozen=True)
class Hardware:
    """The hardware a recipe is written for."""

    gpus: int
    gpu: str
    gpu_memory_gb: int

    def __str__(self) -> str:
        return self.short() if not self.gpus else f"{self.short()} ({self.gpu_memory_gb} GB)"

    def short(self) -> str:
        """`8× h100-80gb`, or `hosted` for a recipe trained on a service's hardware (no GPUs of ours)."""
        return f"{self.gpus}× {self.gpu}" if self.gpus else self.gpu


@dataclass(frozen=True)
class Recipe:
    """One recipe: what it trains, for which hardware, its parameters, and the document it renders."""

    name: str
    title: str
    description: str
    model: str
    method: str
    target: str
    hardware: Hardware
    parameters: dict[str, RecipeParameter]
    document: dict[str, Any]
    launch: str = ""
    source: str = ""
    plugin: str = ""
    tags: tuple[str, ...] = field(default=())
    requires_one_of: tuple[tuple[str, ...], ...] = field(default=())


def load_recipe(path: str | Path, plugin: str = "") -> Recipe:
    """Read and check one recipe file."""
    try:
        loaded = load_document(path)
    except DocumentError as error:
        raise RecipeError(str(error)) from None
    problems = [p.located(str(path), loaded.lines) for p in check_against_schema(loaded.data, "recipe")]
    if problems:
        raise RecipeError("\n".join(str(problem) for problem in problems))
    data = loaded.data
    parameters = {}
    for name, spec in data["parameters"].items():
        schema = {key: value for key, value in spec.items() if key not in ("help", "default", "required")}
        parameters[name] = RecipeParameter(
            name=name,
            help=spec["help"],
            schema=schema,
            default=spec.get("default"),
            required=spec.get("required", False),
        )
    groups = tuple(tuple(group) for group in data.get("requires_one_of", ()))
    for group in groups:
        if undeclared := [name for name in group if name not in parameters]:
            raise RecipeError(f"{path}: requires_one_of names {', '.join(undeclared)}, not parameters")
    return Recipe(
        name=data["name"],
        title=data["title"],
        description=data["description"].strip(),
        model=data["model"],
        method=data["method"],
        target=data["target"],
        hardware=Hardware(**data["hardware"]),
        parameters=parameters,
        document=data["document"],
        launch=data.get("launch", "").strip(),
        source=str(path),
        plugin=plugin,
        tags=tuple(data.get("tags", ())),
        requires_one_of=groups,
    )


def parse_overrides(words: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """`["lora_r=32", "dataset=a.jsonl"]` → `{"lora_r": 32, "dataset": "a.jsonl"}`; values are YAML scalars."""
    overrides: dict[str, Any] = {}
    for word in words:
        name, sep, text = word.partition("=")
        if not sep or not name:
            raise ParameterError(f"expected key=value, got {word!r}")
        try:
            value = yaml.safe_load(text) if text else ""
        except yaml.YAMLError:
            value = text
        overrides[name] = value
    return overrides


def resolve_parameters(recipe: Recipe, overrides: dict[str, Any]) -> dict[str, Any]:
    """The recipe's parameters with defaults applied and each override checked against its schema."""
    unknown = sorted(set(overrides) - set(recipe.parameters))
    if unknown:
        listing = ", ".join(recipe.parameters)
        raise ParameterError(
            f"recipe {recipe.name!r} has no parameter {', '.join(map(repr, unknown))}; its parameters are: "
            f"{listing} (see `mft-recipes show {recipe.name}`)"
        )
    values = {}
    messages = []
    for name, parameter in recipe.parameters.items():
        if name in overrides:
            value = overrides[name]
            # "3" → 3 is the YAML reading of `key=3`; a string parameter still wants "3".
            value = _coerce(value, parameter.schema.get("type"))
            for problem in check_against_schema(value, parameter.schema):
                messages.append(f"{name}={value!r}: {problem.message} (expected {parameter.type_name})")
            values[name] = value
        elif parameter.required:
            messages.append(f"{name} is required: {parameter.help} (give it as {name}=...)")
        else:
            values[name] = copy.deepcopy(parameter.default)
    for group in recipe.requires_one_of:
        if all(values.get(name) is None for name in group):
            choices = " or ".join(f"{name}=..." for name in group)
            messages.append(f"none of {', '.join(group)} is set: give one of them ({choices})")
    if messages:
        raise ParameterError(f"recipe {recipe.name!r}: " + "; ".join(messages))
    return values


def _coerce(value: Any, kind: Any) -> Any:
    """Undo YAML's guesses where the parameter's type says otherwise.

    `name=3` reads as 3 but a string parameter wants "3"; PyYAML reads `1e-4` as a string (YAML 1.1
    floats need a dot) but a number parameter wants 0.0001.
    """
    if kind == "string" and isinstance(value, (int, float, bool)):
        return str(value).lower() if isinstance(value, bool) else str(value)
    if kind == "number" and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value
