"""The plugin manager: built-in plugins and third-party ones, all from the entry-point group "mft_recipes".

Every hook call goes through one dispatcher, `Registry.call_each`, which calls each plugin's
implementation on its own, in load order (built-ins first). So an import error, an exception in a hook,
a recipe that fails its schema or a name already taken is reported with the plugin's name and the rest
keeps working. pluggy's own hook calling (last registered first, wrappers, tryfirst/trylast) is not used,
and a plugin asking for it is refused when it is loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from functools import cache, cached_property
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from mft_recipes import hookspecs
from mft_recipes.architectures import Architecture, Architectures
from mft_recipes.documents import DocumentKind
from mft_recipes.recipes import ParameterSet, Recipe, RecipeError, load_parameter_set, load_recipe
from mft_recipes.render import Generator, Target
from mft_recipes.steps import Exporter, Metric
from mft_recipes.validation import Validator

ENTRY_POINT_GROUP = "mft_recipes"
BUILTIN_DISTRIBUTION = "mft-recipes"
# pluggy options that reorder or wrap other plugins' implementations: call_each honours none of them.
UNSUPPORTED_OPTIONS = ("tryfirst", "trylast", "wrapper", "hookwrapper")


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
    parameter_sets: dict[str, ParameterSet] = field(default_factory=dict)
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

    @cached_property
    def architecture_view(self) -> Architectures:
        """The architectures as plugins are given them: read-only, with `find(base_model)`."""
        return Architectures(self.architectures)

    def call_each(
        self,
        hook_name: str,
        arguments: Callable[[PluginInfo], dict[str, Any]],
        failed: Callable[[PluginInfo, str], None],
    ) -> Iterator[tuple[PluginInfo, Any]]:
        """Call every plugin's implementation of `hook_name`, each on its own, and yield (plugin, result).

        Plugins are called in load order: the built-ins first, then the others by entry-point name (first
        in, first called; not pluggy's last-in-first-out). `arguments(plugin)` gives the hook's arguments
        for that plugin, just before it is called; an implementation gets the ones it names. One that
        raises is passed to `failed(plugin, message)` and skipped, and the next plugin is called.
        """
        for implementation in getattr(self.plugin_manager.hook, hook_name).get_hookimpls():
            info = self.plugins[implementation.plugin_name]
            given = arguments(info)
            try:
                result = implementation.function(*(given[name] for name in implementation.argnames))
            except Exception as error:
                failed(info, f"{hook_name} raised {type(error).__name__}: {error}")
                continue
            yield info, result


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
        except Exception as error:
            info.errors.append(f"failed to load ({type(error).__name__}: {error}); continuing without it")
            continue
        _register(manager, info, plugin)
    for name, plugin in extra_plugins:
        info = PluginInfo(name=name, module=getattr(plugin, "__name__", repr(plugin)))
        registry.plugins[name] = info
        _register(manager, info, plugin)
    _collect(registry)
    return registry


def _register(manager: pluggy.PluginManager, info: PluginInfo, plugin: object) -> None:
    """Register a loaded plugin, unless one of its hookimpls is something call_each cannot honour."""
    try:
        manager.register(plugin, name=info.name)
    except Exception as error:  # pluggy's own checks: a hookimpl whose arguments its hookspec lacks
        info.errors.append(f"failed to load ({type(error).__name__}: {error}); continuing without it")
        return
    refusals = [
        refusal
        for caller in manager.get_hookcallers(plugin) or []
        for implementation in caller.get_hookimpls()
        if implementation.plugin is plugin and (refusal := _refusal(caller, implementation))
    ]
    if refusals:
        manager.unregister(plugin)
        info.errors.append(f"not loaded: {'; '.join(refusals)}")


def _refusal(caller: pluggy.HookCaller, implementation: pluggy.HookImpl) -> str:
    """Why the host cannot call this hookimpl as its plugin means it, or "" when it can."""
    if caller.spec is None and not implementation.optionalhook:
        return (
            f"hookimpl {caller.name}: mft-recipes has no such hook (its hooks: docs/plugins.md); mark it "
            "optionalhook=True if it is meant for another version of mft-recipes"
        )
    options = [f"{option}=True" for option in UNSUPPORTED_OPTIONS if getattr(implementation, option)]
    if options:
        return (
            f"hookimpl {caller.name}({', '.join(options)}): the host calls each plugin's hooks once, in load "
            f"order (built-ins first), so {', '.join(UNSUPPORTED_OPTIONS[:-1])} and {UNSUPPORTED_OPTIONS[-1]} "
            "are not supported"
        )
    return ""


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
    # Parameter sets before recipes: any plugin's recipe may extend any plugin's set.
    _each_plugin(
        registry,
        "register_parameter_sets",
        "parameter set",
        registry.parameter_sets,
        prepare=_as_parameter_set,
    )

    def as_recipe(item: Any, plugin: str) -> Recipe:
        return item if isinstance(item, Recipe) else load_recipe(item, plugin, registry.parameter_sets)

    _each_plugin(registry, "register_recipes", "recipe", registry.recipes, prepare=as_recipe)
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
            continue
        unknown = [target for target in recipe.renders_for if target not in registry.targets]
        if unknown:
            registry.recipes[name] = replace(
                recipe, targets=tuple(target for target in recipe.renders_for if target not in unknown)
            )
            registry.plugins[recipe.plugin].errors.append(
                f"recipe {name!r} ({recipe.source}) lists unknown target(s) {', '.join(map(repr, unknown))}; "
                "it renders for the others"
            )


def _as_parameter_set(item: Any, plugin: str) -> ParameterSet:
    return item if isinstance(item, ParameterSet) else load_parameter_set(item, plugin)


def _each_plugin(
    registry: Registry,
    hook_name: str,
    what: str,
    into: dict[str, Any] | None,
    *,
    append_to: list[Any] | None = None,
    prepare: Callable[[Any, str], Any] | None = None,
) -> None:
    """Call a registration hook of every plugin with a `register` of its own, which files what the plugin
    registers under its name, first come first served."""

    def register_for(info: PluginInfo) -> dict[str, Any]:
        def register(item: Any) -> None:
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

        return {"register": register}

    for _ in registry.call_each(hook_name, register_for, _record_failure):
        pass  # what a registration hook returns means nothing; its `register` calls did the work


def _record_failure(info: PluginInfo, message: str) -> None:
    info.errors.append(message)


def add_plugin_commands(registry: Registry, cli: Any) -> None:
    """Let each plugin add its CLI commands; one that fails is reported, not fatal."""
    known = set(cli.commands)

    def note_added(info: PluginInfo) -> None:
        for command in sorted(set(cli.commands) - known):
            info.add("command", command)
        known.update(cli.commands)

    def failed(info: PluginInfo, message: str) -> None:
        _record_failure(info, message)
        note_added(info)  # what it added before raising stays in the CLI

    for info, _ in registry.call_each("register_commands", lambda _: {"cli": cli}, failed):
        note_added(info)
