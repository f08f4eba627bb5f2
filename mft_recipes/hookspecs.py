"""Every extension point of mft-recipes. A hook's docstring is its documentation.

Hooks follow the `register_*(register)` shape (as in simonw/llm): the host passes a `register`
callable and the plugin calls it once per thing it contributes. The host calls each plugin's
implementation on its own, so one broken plugin is reported by name and the others keep working.
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("mft_recipes")
hookimpl = pluggy.HookimplMarker("mft_recipes")


@hookspec
def register_architectures(register: Any) -> None:
    """Register model architectures: `register(Architecture(...))` (mft_recipes.architectures)."""


@hookspec
def register_recipes(register: Any) -> None:
    """Register recipes: `register(path_to_recipe_yaml)` or `register(Recipe)` (mft_recipes.recipes)."""


@hookspec
def register_document_kinds(register: Any) -> None:
    """Register kinds of documents `validate` knows: `register(DocumentKind(...))` (mft_recipes.documents)."""


@hookspec
def register_targets(register: Any) -> None:
    """Register render targets: `register(Target(...))`, what a recipe's document becomes (mft_recipes.render)."""


@hookspec
def register_generators(register: Any) -> None:
    """Register generators: `register(Generator(...))`, named code that computes part of a document.

    A recipe asks for one with a mapping `{$generate: NAME, ...arguments}` anywhere in its document.
    """


@hookspec
def register_validators(register: Any) -> None:
    """Register validators: `register(Validator(...))`, checks beyond the JSON Schema (mft_recipes.validation)."""


@hookspec
def register_commands(cli: Any) -> None:
    """Add click commands or groups to the `mft-recipes` CLI: `cli.add_command(...)`."""


@hookspec
def adjust_document(document: dict[str, Any], context: Any) -> None:
    """Change a rendered document in place before it is validated and emitted.

    `context` is the mft_recipes.render.RenderContext (recipe, parameters, architecture, target).
    """


@hookspec
def register_exporters(register: Any) -> None:
    """Register exporters: `register(Exporter(...))`, which turn a trained adapter into what a server
    loads (an adapter checked for vLLM, or a merged model) and say how to serve it (mft_recipes.steps)."""


@hookspec
def register_metrics(register: Any) -> None:
    """Register evaluation metrics: `register(Metric(...))`, computed by `eval` over predictions and
    references (mft_recipes.steps)."""


@hookspec
def recipe_facts(recipe: Any, registry: Any) -> dict[str, str] | None:
    """Short facts about a recipe for `list` and `show`, as {label: text} (for example the plan's
    trainable parameters, memory per GPU, and whether it fits the recipe's hardware)."""


@hookspec
def render_warnings(rendered: Any) -> list[str] | None:
    """Warnings `render` prints on stderr about a rendered document (mft_recipes.render.RenderedDocument),
    for example that its plan does not fit the hardware the recipe names."""
