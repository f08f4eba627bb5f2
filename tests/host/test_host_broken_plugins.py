"""A broken third-party plugin is reported by name and everything else keeps working."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from mft_recipes.hookspecs import hookimpl
from mft_recipes.host import build_registry
from mft_recipes.problems import Problem
from mft_recipes.render import Target, render_recipe
from mft_recipes.validation import Validator, validate_document

from .conftest import REPO, checkout_recipes, clean_env, project_schema

BUILTIN_RECIPES = set(checkout_recipes())


def recipe_file(tmp_path: Path, name: str, **changes: Any) -> Path:
    """A copy of the built-in mistral-7b-qlora recipe under another name, with some keys changed or removed."""
    data = yaml.safe_load((REPO / "recipes" / "mistral-7b-qlora.yaml").read_text(encoding="utf-8"))
    data["name"] = name
    for key, value in changes.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


class RecipesPlugin:
    def __init__(self, *paths: Path) -> None:
        self.paths = paths

    @hookimpl
    def register_recipes(self, register: Any) -> None:
        for path in self.paths:
            register(path)


class RaisingPlugin:
    @hookimpl
    def register_recipes(self, register: Any) -> None:
        raise RuntimeError("disk on fire")


def assert_builtins_intact(registry: Any) -> None:
    assert set(registry.recipes) >= BUILTIN_RECIPES
    assert {registry.recipes[name].plugin for name in BUILTIN_RECIPES} == {"catalogue"}


def test_an_exception_in_a_hook_names_the_plugin() -> None:
    registry = build_registry(extra_plugins=[("raiser", RaisingPlugin())])
    assert registry.errors == ["plugin 'raiser': register_recipes raised RuntimeError: disk on fire"]
    assert_builtins_intact(registry)


def test_requires_one_of_must_name_declared_parameters(tmp_path: Path) -> None:
    bad = recipe_file(tmp_path, "bad-group", requires_one_of=[["lora_r", "lora_rank"]])
    registry = build_registry(extra_plugins=[("sloppy", RecipesPlugin(bad))])
    (error,) = registry.errors
    assert (
        error
        == f"plugin 'sloppy': invalid recipe, skipped: {bad}: requires_one_of names lora_rank, not parameters"
    )
    assert_builtins_intact(registry)


def test_a_recipe_that_fails_its_schema_is_skipped_with_its_file_line_and_key(tmp_path: Path) -> None:
    bad = recipe_file(tmp_path, "bad-method", method="qlora4")
    good = recipe_file(tmp_path, "good-one")
    registry = build_registry(extra_plugins=[("sloppy", RecipesPlugin(bad, good))])
    (error,) = registry.errors
    assert error.startswith(f"plugin 'sloppy': invalid recipe, skipped: {bad}:")
    assert "error: method: expected one of 'full', 'lora', 'qlora', got 'qlora4' [schema-enum]" in error
    line = next(n for n, text in enumerate(bad.read_text().splitlines(), 1) if text.startswith("method:"))
    assert f"{bad}:{line}:" in error
    assert "bad-method" not in registry.recipes
    assert registry.recipes["good-one"].plugin == "sloppy"
    assert_builtins_intact(registry)


def test_a_recipe_without_a_required_key_is_skipped(tmp_path: Path) -> None:
    registry = build_registry(
        extra_plugins=[("sloppy", RecipesPlugin(recipe_file(tmp_path, "t", title=None)))]
    )
    (error,) = registry.errors
    assert "error: title: required key is missing [schema-required]" in error
    assert "t" not in registry.recipes


def test_a_recipe_for_an_unknown_model_is_skipped(tmp_path: Path) -> None:
    path = recipe_file(tmp_path, "llama-qlora", model="Llama-3-8B")
    registry = build_registry(extra_plugins=[("llama", RecipesPlugin(path))])
    assert registry.errors == [
        f"plugin 'llama': recipe 'llama-qlora' ({path}) names unknown model 'Llama-3-8B'; skipped"
    ]
    assert "llama-qlora" not in registry.recipes


def test_a_name_already_taken_keeps_the_first_owner(tmp_path: Path) -> None:
    impostor = recipe_file(tmp_path, "mistral-7b-qlora", title="Something else entirely")

    class Impostor(RecipesPlugin):
        @hookimpl
        def register_targets(self, register: Any) -> None:
            register(Target("axolotl", kind="axolotl", format="json"))

    registry = build_registry(extra_plugins=[("impostor", Impostor(impostor))])
    assert sorted(registry.errors) == [
        "plugin 'impostor': recipe 'mistral-7b-qlora' is already registered by plugin 'catalogue'; skipped",
        "plugin 'impostor': target 'axolotl' is already registered by plugin 'axolotl'; skipped",
    ]
    assert registry.recipes["mistral-7b-qlora"].title != "Something else entirely"
    assert registry.targets["axolotl"].format == "yaml"
    assert_builtins_intact(registry)


def test_a_crashing_validator_is_a_problem_of_its_own_and_the_others_still_run() -> None:
    class Crashing:
        @staticmethod
        def check(document: Any, context: Any) -> list[Problem]:
            return [Problem("unreachable", ())] if 1 / 0 else []

        @hookimpl
        def register_validators(self, register: Any) -> None:
            register(Validator("crasher", ("axolotl",), self.check))

    registry = build_registry(extra_plugins=[("crashing", Crashing())])
    recipe = registry.recipes["mistral-7b-qlora"]
    document = render_recipe(recipe, {"dataset": "train.jsonl"}, registry).document
    document["load_in_4bit"] = False  # qlora without 4-bit: a built-in validator must still say so
    problems = validate_document(document, "axolotl", registry)
    crashed = [p for p in problems if p.code == "validator-crashed"]
    assert [p.message for p in crashed] == [
        "validator 'crasher' crashed: ZeroDivisionError: division by zero"
    ]
    assert [p.code for p in problems if p.source != "crasher"] == ["qlora-without-4bit"]


BROKEN_MODULES = {
    "broken_import_plugin": "import no_such_dependency_xyz\n",
    "broken_hook_plugin": (
        "from mft_recipes.hookspecs import hookimpl\n\n"
        "@hookimpl\ndef register_validators(register):\n    raise ValueError('validators misconfigured')\n"
    ),
    "broken_commands_plugin": (
        "from mft_recipes.hookspecs import hookimpl\n\n"
        "@hookimpl\ndef register_commands(cli):\n    raise KeyError('no such group')\n"
    ),
    "impostor_plugin": (
        "from pathlib import Path\nfrom mft_recipes.hookspecs import hookimpl\n\n"
        "@hookimpl\ndef register_recipes(register):\n"
        "    register(Path(__file__).with_name('mistral-7b-qlora.yaml'))\n"
    ),
}
# Entry-point names sort before the built-ins': the built-ins must still load first and keep their names.
ENTRY_POINTS = {
    "aa-import": "broken_import_plugin",
    "aa-hook": "broken_hook_plugin",
    "aa-commands": "broken_commands_plugin",
    "aa-impostor": "impostor_plugin",
}
EXPECTED_WARNINGS = [
    "plugin 'aa-import': failed to load (ModuleNotFoundError: No module named 'no_such_dependency_xyz'); "
    "continuing without it",
    "plugin 'aa-hook': register_validators raised ValueError: validators misconfigured",
    "plugin 'aa-impostor': recipe 'mistral-7b-qlora' is already registered by plugin 'catalogue'; skipped",
    "plugin 'aa-commands': register_commands raised KeyError: 'no such group'",
]


@pytest.fixture
def broken_distribution(tmp_path: Path) -> Path:
    """An installed distribution (a dist-info folder on the path) whose entry points are all broken."""
    for module, source in BROKEN_MODULES.items():
        (tmp_path / f"{module}.py").write_text(source)
    recipe_file(tmp_path, "mistral-7b-qlora", title="Impostor")
    dist_info = tmp_path / "mft_recipes_broken-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: mft-recipes-broken\nVersion: 1.0\n")
    lines = "".join(f"{name} = {module}\n" for name, module in ENTRY_POINTS.items())
    (dist_info / "entry_points.txt").write_text(f"[mft_recipes]\n{lines}")
    return tmp_path


def test_an_entry_point_that_fails_to_import_is_reported(
    broken_distribution: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(broken_distribution))
    for module in BROKEN_MODULES:
        monkeypatch.delitem(sys.modules, module, raising=False)
    registry = build_registry()
    broken = registry.plugins["aa-import"]
    assert (broken.distribution, broken.version) == ("mft-recipes-broken", "1.0")
    assert EXPECTED_WARNINGS[0] in registry.errors
    assert_builtins_intact(registry)


def mft(*args: str, pythonpath: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mft_recipes", *args],
        capture_output=True,
        text=True,
        cwd=pythonpath,
        env=clean_env(PYTHONPATH=str(pythonpath)),
        timeout=120,
    )


def test_the_cli_warns_once_per_broken_plugin_and_keeps_working(broken_distribution: Path) -> None:
    listing = mft("list", "--json", pythonpath=broken_distribution)
    assert listing.returncode == 0, listing.stderr
    warnings = sorted(f"mft-recipes: warning: {warning}" for warning in EXPECTED_WARNINGS)
    assert sorted(listing.stderr.splitlines()) == warnings
    assert {row["name"] for row in yaml.safe_load(listing.stdout)} == BUILTIN_RECIPES

    rendered = mft("render", "mistral-7b-qlora", "dataset=train.jsonl", pythonpath=broken_distribution)
    assert rendered.returncode == 0, rendered.stderr
    assert "Impostor" not in rendered.stdout
    assert yaml.safe_load(rendered.stdout)["adapter"] == "qlora"

    listing = json.loads(mft("plugins", "--json", pythonpath=broken_distribution).stdout)
    jsonschema.validate(listing, project_schema("plugin-list"))
    assert {info["name"]: info["distribution"] for info in listing}["aa-impostor"] == "mft-recipes-broken"
    plugins = mft("plugins", pythonpath=broken_distribution).stdout
    assert "aa-import  [broken_import_plugin]  from mft-recipes-broken 1.0" in plugins
    assert "    error: failed to load (ModuleNotFoundError" in plugins


class RaisingAdjust:
    """An `adjust_document` that raises the way a plugin's bug would: after changing the document."""

    @hookimpl
    def adjust_document(self, document: dict[str, Any], context: Any) -> None:
        document["lora_r"] = 1
        raise RuntimeError("adjustment failed")


class RaisingFacts:
    @hookimpl
    def recipe_facts(self, recipe: Any, architectures: Any) -> dict[str, str]:
        raise RuntimeError("no facts today")


class RaisingWarnings:
    @hookimpl
    def render_warnings(self, rendered: Any) -> list[str]:
        raise RuntimeError("no warnings today")


class OneFact:
    """A working third-party `recipe_facts` that takes only the argument it needs (pluggy allows that),
    and tries to take over a label the plan plugin gives first."""

    @hookimpl
    def recipe_facts(self, recipe: Any) -> dict[str, str]:
        return {"team": "support", "trainable": "all of them"}


def cli_with(monkeypatch: pytest.MonkeyPatch, *plugins: tuple[str, object]) -> Any:
    """The CLI, in process, over a registry holding the built-ins and `plugins`."""
    from click.testing import CliRunner

    from mft_recipes import cli as cli_module

    registry = build_registry(extra_plugins=plugins)
    assert registry.errors == []
    monkeypatch.setattr(cli_module, "get_registry", lambda: registry)
    return lambda *args: CliRunner().invoke(cli_module.cli, list(args))


RENDER = ("render", "mistral-7b-qlora", "dataset=train.jsonl", "micro_batch_size=64", "sequence_len=8192")


def test_a_raising_adjust_document_is_named_and_render_emits_the_document_without_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = cli_with(monkeypatch)(*RENDER)
    assert expected.exit_code == 0, expected.stderr
    result = cli_with(monkeypatch, ("broken", RaisingAdjust()))(*RENDER)
    assert result.exit_code == 0, result.output
    assert result.stdout == expected.stdout, "what the broken plugin changed before raising is undone"
    assert (
        "warning: (document): plugin 'broken': adjust_document raised RuntimeError: adjustment failed; "
        "rendered without its adjustments [plugin-crashed]"
    ) in result.stderr


def test_a_raising_render_warnings_is_named_and_the_other_plugins_warnings_still_print(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = cli_with(monkeypatch, ("broken", RaisingWarnings()))(*RENDER)
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("mft-recipes: warning:")]
    assert len(warnings) == 2
    assert warnings[0].startswith("mft-recipes: warning: plan: needs "), "the plan plugin's warning is kept"
    assert (
        warnings[1]
        == "mft-recipes: warning: plugin 'broken': render_warnings raised RuntimeError: no warnings today"
    )


def test_a_raising_recipe_facts_is_named_once_and_every_other_plugins_facts_stay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    healthy = cli_with(monkeypatch)("list", "--json")
    assert healthy.exit_code == 0, healthy.stderr
    result = cli_with(monkeypatch, ("broken", RaisingFacts()), ("team", OneFact()))("list", "--json")
    assert result.exit_code == 0, result.stderr
    assert (
        result.stderr
        == "mft-recipes: warning: plugin 'broken': recipe_facts raised RuntimeError: no facts today\n"
    )
    facts = {row["name"]: row["facts"] for row in json.loads(healthy.stdout)}
    for row in json.loads(result.stdout):
        assert row["facts"] == {**facts[row["name"]], "team": "support"}, (
            "the first plugin to give a label keeps it"
        )

    shown = cli_with(monkeypatch, ("broken", RaisingFacts()))("show", "mistral-7b-qlora")
    assert shown.exit_code == 0, shown.stderr
    assert "plugin 'broken': recipe_facts raised RuntimeError: no facts today" in shown.stderr
    assert "plan: trainable " in shown.stdout


class Registers:
    """A plugin that would register one recipe, through a hookimpl named `hook` with pluggy `options`."""

    def __init__(self, path: Path, hook: str = "register_recipes", **options: Any) -> None:
        def register_recipes(register: Any) -> None:
            register(path)

        def wrapping(register: Any) -> Any:  # a wrapper must be a generator function
            register(path)
            return (yield)

        wrapper = options.get("wrapper") or options.get("hookwrapper")
        function = wrapping if wrapper else register_recipes
        function.__name__ = hook
        setattr(self, hook, hookimpl(**options)(function))


@pytest.mark.parametrize("option", ["tryfirst", "trylast", "wrapper", "hookwrapper"])
def test_a_hookimpl_option_the_host_does_not_honour_refuses_the_plugin_by_name(
    option: str, tmp_path: Path
) -> None:
    path = recipe_file(tmp_path, "eager-qlora")
    registry = build_registry(
        extra_plugins=[("eager", Registers(path, "register_recipes", **{option: True}))]
    )
    assert registry.errors == [
        f"plugin 'eager': not loaded: hookimpl register_recipes({option}=True): the host calls each plugin's "
        "hooks once, in load order (built-ins first), so tryfirst, trylast, wrapper and hookwrapper are not "
        "supported"
    ]
    assert "eager-qlora" not in registry.recipes
    assert_builtins_intact(registry)


def test_a_hookimpl_for_a_hook_that_does_not_exist_refuses_the_plugin_by_name(tmp_path: Path) -> None:
    path = recipe_file(tmp_path, "typo-qlora")
    registry = build_registry(extra_plugins=[("typo", Registers(path, hook="register_recipe"))])
    assert registry.errors == [
        "plugin 'typo': not loaded: hookimpl register_recipe: mft-recipes has no such hook (its hooks: "
        "docs/plugins.md); mark it optionalhook=True if it is meant for another version of mft-recipes"
    ]
    optional = build_registry(
        extra_plugins=[("typo", Registers(path, hook="register_recipe", optionalhook=True))]
    )
    assert optional.errors == []
    assert_builtins_intact(optional)
