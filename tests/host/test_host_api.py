"""The contract a plugin is written against: the `mft_recipes` module, the typed hookspecs, and
docs/plugins.md, which is generated from them."""

from __future__ import annotations

import ast
import inspect
import re
from typing import Any

import click
import pytest

import mft_recipes
from mft_recipes.host import add_plugin_commands, build_registry
from scripts.update_plugin_docs import described, hooks, main

from .conftest import EXAMPLE_PLUGIN, REPO

REGISTRATION_HOOKS = [hook.__name__ for hook in hooks() if hook.__name__.startswith("register_")]
# Names in hookspec annotations that are not mft-recipes' own types.
NOT_OURS = {"Any", "Callable", "None", "Path"}


def test_the_committed_hook_reference_is_current() -> None:
    assert main(["--check"]) == 0, "run `python scripts/update_plugin_docs.py` and commit docs/plugins.md"


@pytest.mark.parametrize("hook", hooks(), ids=lambda hook: hook.__name__)
def test_each_hook_documents_and_types_each_of_its_arguments(hook: Any) -> None:
    description, arguments = described(hook)
    parameters = inspect.signature(hook).parameters
    assert description
    assert list(arguments) == list(parameters), "one `:param NAME:` entry per argument, in order"
    for parameter in parameters.values():
        assert parameter.annotation not in (inspect.Parameter.empty, "Any"), parameter.name


@pytest.mark.parametrize("hook", hooks(), ids=lambda hook: hook.__name__)
def test_every_type_a_hook_names_is_in_the_api(hook: Any) -> None:
    annotations = [str(parameter.annotation) for parameter in inspect.signature(hook).parameters.values()]
    names = {
        name
        for annotation in annotations
        for name in re.findall(r"[\w.]+", annotation)
        if name[0].isupper() and "." not in name  # click.Group is click's
    }
    assert names - NOT_OURS <= set(mft_recipes.__all__)


class Recorder:
    """A plugin implementing every registration hook, noting the order the host calls them in."""

    def __init__(self) -> None:
        self.called: list[str] = []
        for name in REGISTRATION_HOOKS:
            setattr(self, name, self._implementation(name))

    def _implementation(self, name: str) -> Any:
        def implementation() -> None:
            self.called.append(name)

        implementation.__name__ = name
        return mft_recipes.hookimpl(implementation)


def test_registration_hooks_are_called_in_the_order_the_hookspecs_list_them() -> None:
    recorder = Recorder()
    registry = build_registry(extra_plugins=[("recorder", recorder)])
    add_plugin_commands(registry, click.Group())
    assert registry.errors == []
    assert recorder.called == REGISTRATION_HOOKS


def test_the_example_plugin_imports_mft_recipes_only_through_the_api() -> None:
    for path in sorted(EXAMPLE_PLUGIN.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("mft_recipes"), f"{path}: from {node.module} import ..."
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names if alias.name.startswith("mft_recipes")]
                assert modules in ([], ["mft_recipes"]), f"{path}: import {', '.join(modules)}"


def test_docs_plugins_md_lists_every_name_of_the_api() -> None:
    docs = (REPO / "docs" / "plugins.md").read_text(encoding="utf-8")
    section = docs[docs.index("## The API") : docs.index("## Hooks")]
    listed = set(re.findall(r"`(\w+)[`(]", section))
    assert set(mft_recipes.__all__) - {"__version__"} <= listed
