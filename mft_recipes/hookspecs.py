"""Every extension point of mft-recipes. A hook's docstring is its documentation (docs/plugins.md is
generated from this file by scripts/update_plugin_docs.py).

A plugin implements a hook with a function of the same name marked `@mft_recipes.hookimpl`; it may
leave out arguments it does not need. Every type named below is importable from `mft_recipes`. How the
host calls hooks:

- Each plugin's implementation is called on its own, in load order: the built-in plugins first, then
  the others by entry-point name (first loaded, first called; not pluggy's last-in-first-out). A later
  plugin sees what the earlier ones did.
- An implementation that raises is reported with its plugin's name and skipped; the other plugins are
  still called.
- pluggy's `tryfirst`, `trylast`, `wrapper` and `hookwrapper` options, and a hookimpl whose name is no
  hook here (unless it is marked `optionalhook=True`), make the host refuse the plugin when it loads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import click

    from mft_recipes.architectures import Architecture, Architectures
    from mft_recipes.documents import DocumentKind
    from mft_recipes.recipes import ParameterSet, Recipe
    from mft_recipes.render import Generator, RenderContext, RenderedDocument, Target
    from mft_recipes.steps import Exporter, Metric
    from mft_recipes.validation import Validator

hookspec = pluggy.HookspecMarker("mft_recipes")
hookimpl = pluggy.HookimplMarker("mft_recipes")

# -------------------------------------------------------------------------------------------------------
# Registration hooks: called once per process, in this order (scripts/update_plugin_docs.py says more)
# -------------------------------------------------------------------------------------------------------


@hookspec
def register_architectures(register: Callable[[Architecture], None]) -> None:
    """Register model architectures: the published config values recipes, generators and `plan` use.

    :param register: Call it with an `Architecture` for each model. Recipes name one by its `name`;
        `base_model` values are matched by its `hub_ids`.
    """


@hookspec
def register_document_kinds(register: Callable[[DocumentKind], None]) -> None:
    """Register kinds of documents `validate` knows (an axolotl config, a La Plateforme job payload).

    :param register: Call it with a `DocumentKind` for each kind: its JSON Schema (a name in schemas/ or
        a path the plugin ships) and a `detect(document)` function that tells a loaded document of this
        kind. `validate` tries the kinds in load order.
    """


@hookspec
def register_targets(register: Callable[[Target], None]) -> None:
    """Register render targets: what a recipe's document becomes.

    :param register: Call it with a `Target` for each: its name (a recipe's `target`), the document kind
        its output is validated as, and the format it is written in by default ("yaml" or "json").
    """


@hookspec
def register_generators(register: Callable[[Generator], None]) -> None:
    """Register generators: named code that computes part of a document.

    A recipe asks for one with a mapping `{$generate: NAME, ...arguments}` anywhere in its document; it
    is replaced by `function(arguments, context)`, the arguments filled in first.

    :param register: Call it with a `Generator` for each.
    """


@hookspec
def register_parameter_sets(register: Callable[[ParameterSet | Path], None]) -> None:
    """Register parameter sets: the parameters and document entries that recipes of one target share.
    A recipe takes one with `extends: NAME` and keeps only what makes it that recipe: its defaults, its
    own parameters and document keys (the axolotl plugin's set `axolotl` holds what every axolotl recipe
    has). Called before `register_recipes`, so any plugin's recipe may extend any plugin's set.

    :param register: Call it with the path of a parameter set file (checked against
        schemas/parameter-set.schema.json; one that fails is reported with its file, line and key, and
        skipped) or with a `ParameterSet`.
    """


@hookspec
def register_recipes(register: Callable[[Recipe | Path], None]) -> None:
    """Register recipes.

    :param register: Call it with the path of a recipe file (checked against
        schemas/recipe.schema.json; one that fails is reported with its file, line and key, and skipped)
        or with a `Recipe`. A recipe naming an architecture, target or parameter set nobody registered
        is skipped.
    """


@hookspec
def register_validators(register: Callable[[Validator], None]) -> None:
    """Register validators: checks beyond the JSON Schema, run by `validate` and on every rendered document.

    :param register: Call it with a `Validator` for each: the document kinds it applies to and a
        `check(document, context)` that yields `Problem`s. One that raises becomes a `validator-crashed`
        problem; the others still run. A `deep` validator runs only on `validate --deep`.
    """


@hookspec
def register_exporters(register: Callable[[Exporter], None]) -> None:
    """Register exporters: they turn a trained adapter into what a server loads (an adapter checked for
    vLLM, or a merged model) and say how to serve it (`export`).

    :param register: Call it with an `Exporter` for each.
    """


@hookspec
def register_metrics(register: Callable[[Metric], None]) -> None:
    """Register evaluation metrics, computed by `eval` over predictions and references.

    :param register: Call it with a `Metric` for each.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the `mft-recipes` CLI. They are listed after the built-in commands, in load order.

    :param cli: The `mft-recipes` click group: call `cli.add_command(...)` with click commands or groups.
        Import heavy libraries inside the command, not here: `--help` loads every plugin.
    """


# -------------------------------------------------------------------------------------------------------
# Per-call hooks: called each time the host does what they are about
# -------------------------------------------------------------------------------------------------------


@hookspec
def adjust_document(document: dict[str, Any], context: RenderContext) -> None:
    """Change a rendered document before it is validated and emitted (`render`, and every command that
    renders a recipe). Each plugin's implementation gets the document as the previous ones left it; one
    that raises is undone: the document is rendered without its changes, with a `plugin-crashed` warning.

    :param document: The document, recipe parameters and generators filled in; change it in place.
    :param context: The recipe, its resolved parameters, architecture and target, and the registered
        architectures.
    """


@hookspec
def recipe_facts(
    recipe: Recipe,
    target: Target,
    architectures: Architectures,
    render: Callable[[dict[str, Any]], RenderedDocument],
) -> dict[str, str] | None:
    """Short facts about a recipe that `list` and `show` print (the plan's trainable parameters, memory
    per GPU, whether it fits the recipe's hardware). Called for each recipe they show; return None to
    say nothing. When two plugins give the same label, the first keeps it.

    :param recipe: A registered recipe.
    :param target: The recipe's target.
    :param architectures: The registered architectures; `architectures.find(base_model)` tells which one
        a document's `base_model` names (a name, a hub id or a local model folder).
    :param render: `render(overrides)` renders the recipe by every plugin and validates it, as `render`
        does; each required parameter the overrides leave out (a dataset path) gets a placeholder
        (`mft_recipes.placeholder`). Raises `ParameterError` or `RenderError`.
    """


@hookspec
def render_warnings(rendered: RenderedDocument, architectures: Architectures) -> list[str] | None:
    """Warnings `render` prints on stderr about the document it is about to emit (for example that its
    plan does not fit the hardware the recipe names). Return None or an empty list for none.

    :param rendered: The rendered, validated document, with its recipe, target, parameters and the
        overrides the user gave.
    :param architectures: The registered architectures, as `recipe_facts` gets them.
    """
