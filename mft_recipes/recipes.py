"""Recipe files: loading them, checking them against schemas/recipe.schema.json, resolving parameters.

A recipe may extend a parameter set a plugin registers (schemas/parameter-set.schema.json): the
parameters and document entries recipes for one target share, written once. The recipe keeps what makes
it this recipe (its defaults, its method's keys) and reads as a file of its own.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mft_recipes.documents import DocumentError, LoadedDocument, load_document
from mft_recipes.problems import Problem
from mft_recipes.schemas import check_against_schema, load_schema


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
    """The hardware a recipe is written for: `gpus` GPUs in all (the world size DeepSpeed shards over) on
    `nodes` machines, `gpus_per_node` each. A recipe file gives `gpus` (one machine) or `nodes` and
    `gpus_per_node`."""

    gpus: int
    gpu: str
    gpu_memory_gb: int
    nodes: int = 1

    @property
    def gpus_per_node(self) -> int:
        return self.gpus // self.nodes

    def __str__(self) -> str:
        return self.short() if not self.gpus else f"{self.short()} ({self.gpu_memory_gb} GB)"

    def short(self) -> str:
        """`8× h100-80gb`, `4 nodes × 8× h100-80gb`, or `hosted` for a recipe trained on a service's
        hardware (no GPUs of ours)."""
        if not self.gpus:
            return self.gpu
        one_node = f"{self.gpus_per_node}× {self.gpu}"
        return one_node if self.nodes == 1 else f"{self.nodes} nodes × {one_node}"

    def as_json(self) -> dict[str, Any]:
        return {
            "gpus": self.gpus,
            "gpu": self.gpu,
            "gpu_memory_gb": self.gpu_memory_gb,
            "nodes": self.nodes,
            "gpus_per_node": self.gpus_per_node,
        }


def _hardware(loaded: LoadedDocument) -> Hardware:
    """A recipe file's `hardware`: `gpus` on one machine, or `nodes` × `gpus_per_node` (with `gpus`, if
    given, their product)."""
    written = dict(loaded.data["hardware"])
    nodes, per_node = written.pop("nodes", 1), written.pop("gpus_per_node", None)
    gpus = written.pop("gpus", None)
    if per_node is not None and gpus is not None and gpus != nodes * per_node:
        problem = Problem(
            f"gpus {gpus} is not nodes {nodes} × gpus_per_node {per_node}: give gpus (one machine) or nodes "
            "and gpus_per_node",
            ("hardware", "gpus"),
            "recipe-world-size",
        )
        raise RecipeError(str(problem.located(loaded.file, loaded.lines)))
    total = nodes * per_node if per_node is not None else gpus
    return Hardware(gpus=total, nodes=nodes, **written)


@dataclass(frozen=True)
class CategoryPath:
    """What a classifier recipe's answers are: a category path of `levels` levels written `A > B > C`, each
    leaf (a whole path) with at least `min_examples` training examples.

    One way of writing a path for everything that reads or writes one (data convert, data check, eval):
    the levels joined by ` > `, each level's whitespace collapsed to single spaces. A model trained on
    `Audio>Headphones` and `Audio > Headphones` would learn two labels for one leaf."""

    levels: int
    min_examples: int = 10

    SEPARATOR = ">"

    @staticmethod
    def split(text: str, separator: str = SEPARATOR) -> list[str]:
        """The levels of a path written with `separator` between them, each stripped and its runs of
        whitespace made one space: `Home>Kitchen  Knives >` → ["Home", "Kitchen Knives", ""]."""
        return [" ".join(level.split()) for level in text.split(separator)]

    @classmethod
    def join(cls, levels: list[str]) -> str:
        """The written form: `Home > Kitchen Knives > Chef`."""
        return f" {cls.SEPARATOR} ".join(levels)

    def problem(self, text: str) -> str | None:
        """Why `text` is not a path of this shape in the written form (None when it is)."""
        levels = self.split(text)
        if len(levels) != self.levels:
            count = f"{len(levels)} level{'' if len(levels) == 1 else 's'}"
            return f"{text!r:.80} has {count}; the recipe's paths have {self.levels}, like 'A > B > C'"
        if not all(levels):
            return f"{text!r:.80} has an empty level"
        written = self.join(levels)
        if written != text:
            return f"{text!r:.80} is written {written!r:.80} in the recipe's form (levels joined by ' > ')"
        return None


@dataclass(frozen=True)
class Recipe:
    """One recipe: what it trains, for which hardware, its parameters, and the document it renders.
    `category_path` is set when its answers are category paths (a classifier)."""

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
    category_path: CategoryPath | None = None
    # The targets it renders for as its file lists them (`render --target NAME`), `target` among them;
    # another target translates the document written for `target`. Empty: `target` only.
    targets: tuple[str, ...] = field(default=())

    @property
    def renders_for(self) -> tuple[str, ...]:
        """Every target the recipe renders for, its own `target` first."""
        return (self.target, *(name for name in self.targets if name != self.target))


@dataclass(frozen=True)
class ParameterSet:
    """Parameters and document entries that the recipes of one target share. A recipe takes them with
    `extends: NAME`: the set's parameters come first and its document entries render first, in the set's
    order; a parameter the recipe also declares is changed key by key (a default, a bound, the help), and
    a document key it also gives takes the recipe's value. A document key whose value is null is a slot:
    it renders in the set's place when a recipe fills it, and is left out otherwise.

    `parameters` are specs as a recipe file writes them (JSON Schema fragment, help, default, required).
    """

    name: str
    target: str
    description: str
    parameters: dict[str, dict[str, Any]]
    document: dict[str, Any]
    source: str = ""
    plugin: str = ""


def load_parameter_set(path: str | Path, plugin: str = "") -> ParameterSet:
    """Read and check one parameter set file (schemas/parameter-set.schema.json)."""
    data = _checked(path, "parameter-set").data
    return ParameterSet(
        name=data["name"],
        target=data["target"],
        description=data["description"].strip(),
        parameters=data["parameters"],
        document=data["document"],
        source=str(path),
        plugin=plugin,
    )


def _checked(path: str | Path, schema: str) -> LoadedDocument:
    """A YAML file that meets schemas/SCHEMA.schema.json, or a RecipeError naming each line that does not."""
    try:
        loaded = load_document(path)
    except DocumentError as error:
        raise RecipeError(str(error)) from None
    problems = [p.located(str(path), loaded.lines) for p in check_against_schema(loaded.data, schema)]
    if problems:
        raise RecipeError("\n".join(str(problem) for problem in problems))
    return loaded


def load_recipe(
    path: str | Path, plugin: str = "", parameter_sets: Mapping[str, ParameterSet] | None = None
) -> Recipe:
    """Read and check one recipe file; `parameter_sets` are those its `extends` may name."""
    loaded = _checked(path, "recipe")
    data = loaded.data
    specs, document = data["parameters"], data["document"]
    if "extends" in data:
        specs, document = _extended(loaded, (parameter_sets or {}).get(data["extends"]))
    parameters = {}
    for name, spec in specs.items():
        schema = {key: value for key, value in spec.items() if key not in ("help", "default", "required")}
        parameters[name] = RecipeParameter(
            name=name,
            help=spec["help"],
            schema=schema,
            default=spec.get("default"),
            required=spec.get("required", False),
        )
    groups = tuple(tuple(group) for group in data.get("requires_one_of", ()))
    targets = tuple(data.get("targets", ()))
    if targets and data["target"] not in targets:
        raise RecipeError(
            str(
                Problem(
                    f"lists the targets it renders for, but not its own target {data['target']!r}",
                    ("targets",),
                    "recipe-targets",
                ).located(str(path), loaded.lines)
            )
        )
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
        hardware=_hardware(loaded),
        parameters=parameters,
        document=document,
        launch=data.get("launch", "").strip(),
        source=str(path),
        plugin=plugin,
        tags=tuple(data.get("tags", ())),
        requires_one_of=groups,
        category_path=CategoryPath(**data["category_path"]) if "category_path" in data else None,
        targets=targets,
    )


def _extended(loaded: LoadedDocument, base: ParameterSet | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The parameter specs and the document of a recipe that extends `base`: the set's, then the recipe's."""
    data, file = loaded.data, loaded.file

    def refused(message: str) -> RecipeError:
        return RecipeError(str(Problem(message, ("extends",), "recipe-extends").located(file, loaded.lines)))

    if base is None:
        raise refused(
            f"no plugin registers a parameter set {data['extends']!r} (`mft-recipes plugins` lists them)"
        )
    if base.target != data["target"]:
        raise refused(
            f"parameter set {base.name!r} ({base.source}) is for target {base.target!r}, not {data['target']!r}"
        )
    specs = {name: dict(spec) for name, spec in base.parameters.items()}
    for name, change in data["parameters"].items():
        specs[name] = {**specs.get(name, {}), **change}
    whole = load_schema("recipe")["$defs"]["parameter"]
    problems = [
        Problem(
            f"{problem.message} (parameter set {base.name!r} has no {name!r}: a new parameter is declared in full)",
            ("parameters", name, *problem.path),
            problem.code,
        ).located(file, loaded.lines)
        for name in data["parameters"].keys() - base.parameters.keys()
        for problem in check_against_schema(specs[name], whole)
    ]
    if problems:
        raise RecipeError("\n".join(str(problem) for problem in problems))
    return specs, {**base.document, **data["document"]}


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
