"""Rendering: recipe + parameters → a target document, through generators and the adjust hooks.

A recipe's document is data with two kinds of holes. A string `${name}` is replaced by the value of
parameter `name` (keeping its type when the string is nothing but the placeholder). A mapping
`{$generate: NAME, ...arguments}` is replaced by what the registered generator NAME computes. Mapping
entries that end up null are dropped, so optional parameters disappear from the output when unset.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mft_recipes import __version__
from mft_recipes.architectures import Architecture, Architectures
from mft_recipes.problems import Problem
from mft_recipes.recipes import Recipe, RecipeParameter, resolve_parameters
from mft_recipes.validation import validate_document

if TYPE_CHECKING:
    from mft_recipes.host import PluginInfo, Registry
    from mft_recipes.launching import LaunchRequest, TrainingLaunch

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class RenderError(Exception):
    """A recipe that cannot be rendered (a missing generator, a placeholder with no parameter)."""


@dataclass(frozen=True)
class Target:
    """What a recipe renders into. `kind` names the DocumentKind its output is validated as;
    `format` is how it is written by default ("yaml" or "json"). `launch`, when the target has one, gives
    `mft-recipes launch` the training files and command for a cluster (mft_recipes.launching)."""

    name: str
    kind: str
    format: str
    description: str = ""
    launch: Callable[[LaunchRequest], TrainingLaunch] | None = None


@dataclass(frozen=True)
class Generator:
    """Named code that computes part of a document: `function(arguments, context) -> value`."""

    name: str
    function: Callable[[dict[str, Any], RenderContext], Any]
    description: str = ""


@dataclass(frozen=True)
class RenderContext:
    """Everything a generator or an `adjust_document` hook may look at: the recipe, its parameters as
    resolved (defaults and overrides), its architecture, its target, and the registered architectures
    (which one a `base_model` parameter names: `context.architectures.find(base_model)`)."""

    recipe: Recipe
    parameters: dict[str, Any]
    architecture: Architecture
    target: Target
    architectures: Architectures


@dataclass
class RenderedDocument:
    """A rendered, validated document and what it came from."""

    recipe: Recipe
    target: Target
    parameters: dict[str, Any]
    overrides: dict[str, Any]
    document: dict[str, Any]
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [problem for problem in self.problems if problem.is_error]


def render_recipe(recipe: Recipe, overrides: dict[str, Any], registry: Registry) -> RenderedDocument:
    """Render a recipe with overrides, then validate the result as its target's kind."""
    parameters = resolve_parameters(recipe, overrides)
    target = registry.targets[recipe.target]
    architectures = registry.architecture_view
    context = RenderContext(recipe, parameters, architectures[recipe.model], target, architectures)
    file = f"<recipe {recipe.name}>"
    crashed: list[Problem] = []
    filled = _Filler(context, registry.generators).fill(recipe.document, ())
    document = _adjusted(filled, context, registry, file, crashed)
    problems = validate_document(
        document, target.kind, registry, file=file, gpus=recipe.hardware.gpus or None
    )
    return RenderedDocument(recipe, target, parameters, overrides, document, crashed + problems)


def render_for_plan(recipe: Recipe, overrides: dict[str, Any], registry: Registry) -> RenderedDocument:
    """`render_recipe` before the user has data: each required parameter the overrides leave out (a
    dataset path, an uploaded file id, label names), which cannot change the plan or the training
    settings, gets a `placeholder`. The result's `overrides` are the ones given."""
    filled = dict(overrides)
    for parameter in recipe.parameters.values():
        if parameter.required and parameter.name not in filled:
            filled[parameter.name] = placeholder(parameter)
    rendered = render_recipe(recipe, filled, registry)
    rendered.overrides = dict(overrides)
    return rendered


def placeholder(parameter: RecipeParameter) -> Any:
    """A value of the parameter's type that satisfies its schema's simple bounds."""
    schema = parameter.schema
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    if "enum" in schema:
        return schema["enum"][0]
    if "integer" in kinds or "number" in kinds:
        return schema.get("minimum", 1)
    if "boolean" in kinds:
        return False
    if "array" in kinds:
        return [f"<{parameter.name}-{index}>" for index in range(max(int(schema.get("minItems", 1)), 1))]
    return f"<{parameter.name}>"


def _adjusted(
    document: dict[str, Any], context: RenderContext, registry: Registry, file: str, crashed: list[Problem]
) -> dict[str, Any]:
    """The document after every plugin's `adjust_document`, each one given a copy of it: a plugin that
    raises leaves no half-made change behind (it is a warning in `crashed`, and the next one goes on)."""
    attempt = document

    def arguments(_plugin: PluginInfo) -> dict[str, Any]:
        nonlocal attempt
        attempt = copy.deepcopy(document)
        return {"document": attempt, "context": context}

    def failed(plugin: PluginInfo, message: str) -> None:
        text = f"plugin {plugin.name!r}: {message}; rendered without its adjustments"
        crashed.append(
            Problem(text, code="plugin-crashed", severity="warning", source=plugin.name, file=file)
        )

    for _plugin, _ in registry.call_each("adjust_document", arguments, failed):
        document = attempt
    return document


@dataclass(frozen=True)
class _Filler:
    """Fills a recipe's document: parameters into `${name}`, generators' values into `{$generate: ...}`."""

    context: RenderContext
    generators: dict[str, Generator]

    def fill(self, node: Any, path: tuple[str | int, ...]) -> Any:
        if isinstance(node, dict):
            if "$generate" in node:
                return self.generate(node, path)
            filled = {key: self.fill(value, (*path, key)) for key, value in node.items()}
            return {key: value for key, value in filled.items() if value is not None}
        if isinstance(node, list):
            return [self.fill(item, (*path, index)) for index, item in enumerate(node)]
        if isinstance(node, str):
            return self.substitute(node, path)
        return node

    def substitute(self, text: str, path: tuple[str | int, ...]) -> Any:
        parameters = self.context.parameters

        def value_of(name: str) -> Any:
            if name not in parameters:
                raise RenderError(
                    f"recipe {self.context.recipe.name!r}: {'.'.join(map(str, path))} uses ${{{name}}}, "
                    "which is not one of its parameters"
                )
            return parameters[name]

        whole = _PLACEHOLDER.fullmatch(text)
        if whole:
            return value_of(whole.group(1))
        return _PLACEHOLDER.sub(lambda match: str(value_of(match.group(1))), text)

    def generate(self, node: dict[str, Any], path: tuple[str | int, ...]) -> Any:
        name = node["$generate"]
        generator = self.generators.get(name)
        if generator is None:
            known = ", ".join(self.generators) or "none"
            raise RenderError(f"recipe {self.context.recipe.name!r}: no generator {name!r} (known: {known})")
        arguments = self.fill({key: value for key, value in node.items() if key != "$generate"}, path)
        return generator.function(arguments, self.context)


def header_lines(rendered: RenderedDocument) -> list[str]:
    """Comment lines that let a rendered file be traced back to its recipe and parameters."""
    used = " ".join(f"{name}={_scalar(value)}" for name, value in rendered.overrides.items()) or "(defaults)"
    lines = [
        f"Rendered by mft-recipes {__version__} from recipe {rendered.recipe.name} "
        f"(target {rendered.target.name}).",
        f"Overrides: {used}",
        f"Written for: {rendered.recipe.hardware}.",
    ]
    if rendered.recipe.launch:
        lines.append("Launch: " + rendered.recipe.launch.splitlines()[0])
    return lines


def _scalar(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) or not value or " " in value else value


def emit(rendered: RenderedDocument, fmt: str | None = None) -> str:
    """The rendered document as text: YAML headed by comment lines, or JSON."""
    fmt = fmt or rendered.target.format
    if fmt == "json":
        return json.dumps(rendered.document, indent=2) + "\n"
    import yaml

    class Dumper(yaml.SafeDumper):
        """Multi-line strings (a chat template) as literal blocks, readable as they are."""

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)

    Dumper.add_representer(str, text)
    header = "".join(f"# {line}\n" for line in header_lines(rendered))
    body = yaml.dump(rendered.document, Dumper=Dumper, sort_keys=False, default_flow_style=False, width=100)
    return header + body
