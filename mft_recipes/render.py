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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mft_recipes import __version__
from mft_recipes.architectures import Architecture, Architectures
from mft_recipes.problems import Problem
from mft_recipes.recipes import Recipe, RecipeParameter, resolve_parameters
from mft_recipes.validation import validate_document

if TYPE_CHECKING:
    from mft_recipes.host import PluginInfo, Registry

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class RenderError(Exception):
    """A recipe that cannot be rendered (a missing generator, a placeholder with no parameter)."""


@dataclass(frozen=True)
class Target:
    """What a recipe renders into. `kind` names the DocumentKind its output is validated as;
    `format` is how it is written by default ("yaml" or "json").

    A target may also render recipes written for another one (a recipe lists it in its `targets`):
    `translate(document, context)` turns the document rendered for one of the targets it `translates`
    into its own, or raises RenderError saying what it cannot express and why. `companions(document,
    context)` gives, from that same document, the other files a run needs beside it ({suffix: document}, written as
    `NAME.SUFFIX.yaml` next to `render -o NAME.yaml`: an accelerate config), and `launch(rendered, paths)`
    the command that runs the written files (`paths`: "" the document, else each companion's suffix)."""

    name: str
    kind: str
    format: str
    description: str = ""
    translates: tuple[str, ...] = ()
    translate: Callable[[dict[str, Any], RenderContext], dict[str, Any]] | None = None
    companions: Callable[[dict[str, Any], RenderContext], dict[str, dict[str, Any]]] | None = None
    launch: Callable[[RenderedDocument, Mapping[str, str]], str] | None = None


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
    """A rendered, validated document and what it came from; `companions` are the files its target
    writes beside it ({suffix: document}, `Target.companions`)."""

    recipe: Recipe
    target: Target
    parameters: dict[str, Any]
    overrides: dict[str, Any]
    document: dict[str, Any]
    problems: list[Problem] = field(default_factory=list)
    companions: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [problem for problem in self.problems if problem.is_error]


def render_recipe(
    recipe: Recipe, overrides: dict[str, Any], registry: Registry, target: str | None = None
) -> RenderedDocument:
    """Render a recipe with overrides for `target` (default: its own), then validate the result as that
    target's kind. Another target than the recipe's own translates the document rendered for it
    (generators and `adjust_document` hooks included); RenderError when the recipe does not list it or it
    cannot express the recipe."""
    parameters = resolve_parameters(recipe, overrides)
    native = registry.targets[recipe.target]
    output = _output_target(recipe, target or recipe.target, registry)
    architectures = registry.architecture_view
    context = RenderContext(recipe, parameters, architectures[recipe.model], native, architectures)
    file = f"<recipe {recipe.name}>" if output is native else f"<recipe {recipe.name} for {output.name}>"
    crashed: list[Problem] = []
    filled = _Filler(context, registry.generators).fill(recipe.document, ())
    document = _adjusted(filled, context, registry, file, crashed)
    companions: dict[str, dict[str, Any]] = {}
    if output is not native:
        context = RenderContext(recipe, parameters, context.architecture, output, architectures)
        assert output.translate is not None  # _output_target checked it
        companions = output.companions(document, context) if output.companions else {}
        document = output.translate(document, context)
    problems = validate_document(
        document, output.kind, registry, file=file, gpus=recipe.hardware.gpus or None
    )
    rendered = RenderedDocument(recipe, output, parameters, overrides, document, crashed + problems)
    rendered.companions = companions
    return rendered


def _output_target(recipe: Recipe, name: str, registry: Registry) -> Target:
    """The target `name` for `recipe`, or RenderError: the recipe does not list it, or it does not
    translate documents of the recipe's own target."""
    if name not in recipe.renders_for:
        known = "" if name in registry.targets else f" (no target {name!r} is registered)"
        raise RenderError(
            f"recipe {recipe.name!r} renders for {', '.join(recipe.renders_for)}, not for {name!r}{known}"
        )
    target = registry.targets[name]
    if name != recipe.target and (recipe.target not in target.translates or target.translate is None):
        raise RenderError(
            f"recipe {recipe.name!r} lists target {name!r}, but {name!r} does not translate documents "
            f"written for {recipe.target!r} (it translates: {', '.join(target.translates) or 'none'})"
        )
    return target


def render_for_plan(
    recipe: Recipe, overrides: dict[str, Any], registry: Registry, target: str | None = None
) -> RenderedDocument:
    """`render_recipe` before the user has data: each required parameter the overrides leave out (a
    dataset path, an uploaded file id, label names), which cannot change the plan or the training
    settings, gets a `placeholder`. The result's `overrides` are the ones given."""
    filled = dict(overrides)
    for parameter in recipe.parameters.values():
        if parameter.required and parameter.name not in filled:
            filled[parameter.name] = placeholder(parameter)
    rendered = render_recipe(recipe, filled, registry, target)
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
    launch = launch_text(rendered)
    if launch:
        lines.append("Launch: " + launch.splitlines()[0])
    return lines


def launch_text(rendered: RenderedDocument, paths: Mapping[str, str] | None = None) -> str:
    """How to launch what was rendered: the recipe's own `launch` for its own target, else the target's
    command for the files at `paths` ("" the document, else each companion's suffix)."""
    if rendered.target.name == rendered.recipe.target:
        return rendered.recipe.launch
    if rendered.target.launch is None:
        return ""
    return rendered.target.launch(rendered, paths or {})


def _scalar(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) or not value or " " in value else value


def emit(rendered: RenderedDocument, fmt: str | None = None) -> str:
    """The rendered document as text: YAML headed by comment lines, or JSON."""
    fmt = fmt or rendered.target.format
    if fmt == "json":
        return json.dumps(rendered.document, indent=2) + "\n"
    header = "".join(f"# {line}\n" for line in header_lines(rendered))
    return header + _yaml(rendered.document)


def emit_companion(rendered: RenderedDocument, suffix: str, main_file: str) -> str:
    """A companion file (`RenderedDocument.companions[suffix]`) as YAML, headed by the line that says
    what it goes with."""
    header = (
        f"# Rendered by mft-recipes {__version__} from recipe {rendered.recipe.name} (target "
        f"{rendered.target.name}): the {suffix} config that goes with {main_file}.\n"
    )
    return header + _yaml(rendered.companions[suffix])


def companion_path(path: str, suffix: str) -> str:
    """Where a companion of the document written to `path` goes: `run.yaml` → `run.SUFFIX.yaml`."""
    from pathlib import Path

    written = Path(path)
    extension = written.suffix if written.suffix.lower() in (".yml", ".yaml") else ".yaml"
    return str(written.with_name(f"{written.stem}.{suffix}{extension}"))


def _yaml(document: dict[str, Any]) -> str:
    import yaml

    class Dumper(yaml.SafeDumper):
        """Multi-line strings (a chat template) as literal blocks, readable as they are."""

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)

    Dumper.add_representer(str, text)
    return yaml.dump(document, Dumper=Dumper, sort_keys=False, default_flow_style=False, width=100)
