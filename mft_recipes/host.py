"""The plugin manager: built-in plugins and third-party ones, all from the entry-point group "mft_recipes".

Every plugin is loaded and asked for its contributions on its own, so an import error, an exception in
a hook, a recipe that fails its schema or a name already taken is reported with the plugin's name and
the rest keeps working.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from mft_recipes import hookspecs
from mft_recipes.architectures import Architecture
from mft_recipes.documents import DocumentKind
from mft_recipes.recipes import Recipe, RecipeError, load_recipe
from mft_recipes.render import Generator, Target
from mft_recipes.steps import Exporter, Metric
from mft_recipes.validation import Validator

ENTRY_POINT_GROUP = "mft_recipes"
BUILTIN_DISTRIBUTION = "mft-recipes"


@dataclass
class PluginInfo:
    """A loaded (or failed) plugin: where it came from and what it added."""

    name: str
    module: str
    distribution: str = ""
    version: str = ""
    added: dict[str, list[str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def add(self, what: str, name: str) -> None:
        self.added.setdefault(what, []).append(name)


@dataclass
class Registry:
    """Everything the plugins contributed, by kind, plus what went wrong while collecting it."""

    plugin_manager: pluggy.PluginManager
    plugins: dict[str, PluginInfo] = field(default_factory=dict)
    architectures: dict[str, Architecture] = field(default_factory=dict)
    recipes: dict[str, Recipe] = field(default_factory=dict)
    kinds: dict[str, DocumentKind] = field(default_factory=dict)
    targets: dict[str, Target] = field(default_factory=dict)
    generators: dict[str, Generator] = field(default_factory=dict)
    validators: list[Validator] = field(default_factory=list)
    exporters: dict[str, Exporter] = field(default_factory=dict)
    metrics: dict[str, Metric] = field(default_factory=dict)
    owners: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def errors(self) -> list[str]:
        return [f"plugin {info.name!r}: {error}" for info in self.plugins.values() for error in info.errors]

    def find_architecture(self, base_model: str) -> Architecture | None:
        """The architecture of a `base_model` value: a catalogue name, a hub id, or a local model folder."""
        for architecture in self.architectures.values():
            if base_model == architecture.name or base_model in architecture.hub_ids:
                return architecture
        config = Path(base_model) / "config.json"
        if config.is_file():
            import json

            try:
                return Architecture.from_hf_config(base_model, json.loads(config.read_text()))
            except (ValueError, KeyError, json.JSONDecodeError):
                return None
        return None


def _entry_points() -> list[metadata.EntryPoint]:
    points = list(metadata.entry_points(group=ENTRY_POINT_GROUP))
    # Built-ins first, so a third party cannot take a built-in name by loading earlier.
    return sorted(points, key=lambda ep: (ep.dist is None or ep.dist.name != BUILTIN_DISTRIBUTION, ep.name))


def build_registry(extra_plugins: Iterable[tuple[str, ModuleType | object]] = ()) -> Registry:
    """Load every plugin of the entry-point group (and `extra_plugins`, for tests) into a Registry."""
    manager = pluggy.PluginManager(ENTRY_POINT_GROUP)
    manager.add_hookspecs(hookspecs)
    registry = Registry(plugin_manager=manager)
    for entry_point in _entry_points():
        dist = entry_point.dist
        info = PluginInfo(
            name=entry_point.name,
            module=entry_point.value,
            distribution=dist.name if dist else "",
            version=dist.version if dist else "",
        )
        registry.plugins[info.name] = info
        try:
            plugin = entry_point.load()
            manager.register(plugin, name=info.name)
        except Exception as error:
            info.errors.append(f"failed to load ({type(error).__name__}: {error}); continuing without it")
    for name, plugin in extra_plugins:
        registry.plugins[name] = PluginInfo(name=name, module=getattr(plugin, "__name__", repr(plugin)))
        manager.register(plugin, name=name)
    _collect(registry)
    return registry


@cache
def get_registry() -> Registry:
    """The registry of this process, built once."""
    return build_registry()


def _collect(registry: Registry) -> None:
    # Architectures first: recipes name them. Kinds before validators and targets refer to them.
    _each_plugin(registry, "register_architectures", "architecture", registry.architectures)
    _each_plugin(registry, "register_document_kinds", "kind", registry.kinds)
    _each_plugin(registry, "register_targets", "target", registry.targets)
    _each_plugin(registry, "register_generators", "generator", registry.generators)
    _each_plugin(registry, "register_recipes", "recipe", registry.recipes, prepare=_as_recipe)
    _each_plugin(registry, "register_validators", "validator", None, append_to=registry.validators)
    _each_plugin(registry, "register_exporters", "exporter", registry.exporters)
    _each_plugin(registry, "register_metrics", "metric", registry.metrics)
    for name, recipe in list(registry.recipes.items()):
        missing = [
            f"{what} {value!r}"
            for what, value, known in (
                ("model", recipe.model, registry.architectures),
                ("target", recipe.target, registry.targets),
            )
            if value not in known
        ]
        if missing:
            del registry.recipes[name]
            owner = registry.plugins[recipe.plugin]
            owner.errors.append(
                f"recipe {name!r} ({recipe.source}) names unknown {', '.join(missing)}; skipped"
            )


def _as_recipe(item: Any, plugin: str) -> Recipe:
    if isinstance(item, Recipe):
        return item
    return load_recipe(item, plugin=plugin)


def _each_plugin(
    registry: Registry,
    hook_name: str,
    what: str,
    into: dict[str, Any] | None,
    *,
    append_to: list[Any] | None = None,
    prepare: Callable[[Any, str], Any] | None = None,
) -> None:
    hook = getattr(registry.plugin_manager.hook, hook_name)
    # get_hookimpls() is in registration order (built-ins first); calling the hook would go last-first.
    for implementation in hook.get_hookimpls():
        plugin_name = implementation.plugin_name
        info = registry.plugins.setdefault(plugin_name, PluginInfo(plugin_name, plugin_name))

        def register(item: Any, info: PluginInfo = info) -> None:
            try:
                item = prepare(item, info.name) if prepare else item
            except RecipeError as error:
                info.errors.append(f"invalid {what}, skipped: {error}")
                return
            name = item.name
            if into is not None:
                owner = registry.owners.get((what, name))
                if owner is not None:
                    info.errors.append(f"{what} {name!r} is already registered by plugin {owner!r}; skipped")
                    return
                into[name] = item
                registry.owners[(what, name)] = info.name
            if append_to is not None:
                append_to.append(item)
            info.add(what, name)

        try:
            implementation.function(register=register)
        except Exception as error:
            info.errors.append(f"{hook_name} raised {type(error).__name__}: {error}")


def add_plugin_commands(registry: Registry, cli: Any) -> None:
    """Let each plugin add its CLI commands; one that fails is reported, not fatal."""
    for implementation in registry.plugin_manager.hook.register_commands.get_hookimpls():
        info = registry.plugins.setdefault(
            implementation.plugin_name, PluginInfo(implementation.plugin_name, "")
        )
        before = set(cli.commands)
        try:
            implementation.function(cli=cli)
        except Exception as error:
            info.errors.append(f"register_commands raised {type(error).__name__}: {error}")
        for command in sorted(set(cli.commands) - before):
            info.add("command", command)
