"""Generate schemas/axolotl.schema.json from the installed axolotl's own config model.

axolotl validates its YAML with pydantic (`AxolotlInputConfig`) but drops keys it does not know without a
word, so a typo (`lora_dropuot`, `gradient_acumulation_steps`) trains with the default. This script turns
that model into a plain JSON Schema that any JSON Schema tool can use, and makes it strict: unknown keys
are errors at the top level and inside every nested axolotl model whose unknown keys axolotl would drop
(datasets, trl, vllm, fsdp_config, ...). Free-form mappings (`model_config`, an inline `deepspeed`) stay
open. Every name axolotl accepts for a field is a property: the alias (`model_config`) and the field's own
name (`overrides_of_model_config`).

Plugins: axolotl merges the argument model of each plugin a config lists under `plugins:` into its config
model before validating (`prepare_plugins`, then `axolotl.integrations.config.merge_input_args`). The schema
carries one fragment per integration axolotl ships (`$defs["plugin <name>"]`, generated from the plugin's
own `get_input_args()` model), applied only when `plugins:` names that plugin; `x-axolotl-plugins` lists
every name a config may use for each. A listed plugin that is none of them (a third party's) switches
the unknown-key check off, since its keys cannot be known here; `validate` warns about such keys instead.

Tightenings: where axolotl's model accepts a value that can only fail later or mean nothing, the schema
is stricter (TIGHTENINGS below, each with the failure it prevents). Where pydantic's lax mode accepts more
than a JSON type says, the schema follows it: a number may be written as a string that reads as one
(`_yaml_numbers`: YAML 1.1 reads `5e-4` as a string), and a boolean where a number is expected reads as
0 or 1 (`_boolean_numbers`: axolotl's own relora example writes `jagged_restart_anneal_steps: false`).

    python scripts/generate_axolotl_schema.py            # rewrite schemas/axolotl.schema.json
    python scripts/generate_axolotl_schema.py --check    # exit 1 if the committed schema has drifted

Run it with the pinned axolotl installed (`nox -s axolotl` installs it); the axolotl tier runs `--check`.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import pkgutil
import sys
import typing
import warnings
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "axolotl.schema.json"
# Names a "before" validator of axolotl's rewrites, which the pydantic schema cannot show: inside
# `fsdp_config`, `fsdp_offload_params` is the deprecated spelling of `offload_params`
# (AxolotlInputConfig.check_fsdp_config_kwargs_prefix).
DEPRECATED_PREFIXES = {"FSDPConfig": "fsdp_"}
# A number written as a string: YAML 1.1 (PyYAML, so axolotl) reads `2e-5` without a dot as a string.
NUMBER_PATTERN = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"
# The same for a number that must be >= 0 (no minus sign), or > 0 (nor only zeros): the bounds at zero that
# axolotl's fields have (ge=0, gt=0) hold for the written form too; other bounds only for a YAML number.
NON_NEGATIVE_PATTERN = r"^\+?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"
POSITIVE_PATTERN = r"^(?!\+?0*\.?0*([eE][+-]?\d+)?$)\+?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"
ANNOTATIONS = ("title", "description", "default", "examples", "deprecated")
DATASET_MODELS = ("SFTDataset", "DPODataset", "KTODataset", "StepwiseSupervisedDataset", "PretrainingDataset")


@dataclass(frozen=True)
class Tightening:
    """Constraints added to one field of one axolotl model, by JSON type of the value (`string`,
    `number`), and why: the failure that axolotl's own model lets through."""

    model: str
    field: str
    constraints: dict[str, dict[str, Any]]
    why: str


TIGHTENINGS = (
    Tightening(
        "AxolotlInputConfig",
        "learning_rate",
        {
            "number": {"exclusiveMinimum": 0},
            "string": {"pattern": POSITIVE_PATTERN, "description": "a number above 0"},
        },
        "typed `str | float`, a string converted by float() in a validator (so `fast` is refused there, "
        "which `string` alone cannot say); a negative rate passes and torch refuses it when the Trainer "
        "builds the optimizer, after the model is loaded; 0 trains nothing",
    ),
    Tightening(
        "AxolotlInputConfig",
        "num_epochs",
        {"number": {"exclusiveMinimum": 0}},
        "a float with no bound: -1 passes validation and normalization (save_steps becomes -1.0) and "
        "trains no step; 0 divides by zero in normalize_config when saves_per_epoch is set",
    ),
    Tightening(
        "AxolotlInputConfig",
        "base_model",
        {"string": {"minLength": 1}},
        "an empty base_model passes axolotl's model; transformers then fails to load a model named ''",
    ),
    *(
        Tightening(
            model,
            "path",
            {"string": {"minLength": 1}},
            "an empty dataset path passes axolotl's model, and its loader takes Path('') (the launch "
            "directory, which exists) for a local dataset folder (axolotl/utils/data/shared.py)",
        )
        for model in DATASET_MODELS
    ),
)


def _json_schema_generator() -> type:
    """pydantic's generator, taught the two things axolotl's model has that JSON cannot say."""
    from pydantic.json_schema import GenerateJsonSchema
    from pydantic_core import PydanticSerializationError

    class AxolotlJsonSchema(GenerateJsonSchema):
        def enum_schema(self, schema: Any) -> dict[str, Any]:
            try:
                return super().enum_schema(schema)
            except PydanticSerializationError:
                # Enums of torch dtypes (TorchAOQuantDType): the YAML names them by string, which a
                # validator of axolotl's maps to a member (and accepts aliases such as "fp8").
                names = [member.name for member in schema["members"]]
                return {"type": "string", "examples": names}

        def handle_invalid_for_json_schema(self, schema: Any, error_info: str) -> dict[str, Any]:
            return {}  # a Python-only type (a callable): JSON can say nothing about it, so accept anything

    return AxolotlJsonSchema


def _models(root: Any) -> dict[str, Any]:
    """Every pydantic model reachable from `root` through field annotations, by class name (the name
    pydantic gives it under $defs)."""
    from pydantic import BaseModel

    found: dict[str, Any] = {}

    def visit(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation.__name__ in found:
                return
            found[annotation.__name__] = annotation
            for field in annotation.model_fields.values():
                visit(field.annotation)
        for argument in typing.get_args(annotation):
            visit(argument)

    visit(root)
    return found


def _accepted_names(model: Any) -> dict[str, str]:
    """{name a YAML may use: the name the schema lists it under} for fields with more than one name."""
    from pydantic import AliasChoices

    names: dict[str, str] = {}
    by_name = model.model_config.get("populate_by_name") or model.model_config.get("validate_by_name")
    for field_name, field in model.model_fields.items():
        listed = field.alias or field_name
        aliases = [field.alias] if field.alias else []
        if isinstance(field.validation_alias, AliasChoices):
            aliases += [choice for choice in field.validation_alias.choices if isinstance(choice, str)]
        elif isinstance(field.validation_alias, str):
            aliases.append(field.validation_alias)
        for name in [*aliases, *([field_name] if by_name or not aliases else [])]:
            if name != listed:
                names[name] = listed
    return names


def _add_accepted_names(model: Any, schema: dict[str, Any]) -> None:
    """List every other name axolotl accepts for a field (aliases, deprecated prefixes) as a property."""
    properties = schema.setdefault("properties", {})
    for name, listed in _accepted_names(model).items():
        if listed in properties:
            properties[name] = {**properties[listed], "description": f"Another name for `{listed}`."}
    prefix = DEPRECATED_PREFIXES.get(model.__name__)
    for name in list(properties) if prefix else []:
        if not name.startswith(prefix):
            properties.setdefault(
                prefix + name, {**properties[name], "description": f"Deprecated: `{name}`."}
            )


def _strict_model_schema(model: Any, schema: dict[str, Any]) -> None:
    """Add the other accepted names of each field, and refuse unknown keys where axolotl drops them."""
    _add_accepted_names(model, schema)
    if model.model_config.get("extra") in (None, "ignore"):
        schema["additionalProperties"] = False


def _strict_defs(models: dict[str, Any], defs: dict[str, Any]) -> None:
    for name, definition in defs.items():
        if name in models and definition.get("type") == "object":
            _strict_model_schema(models[name], definition)


def _tighten(schema: dict[str, Any], tightening: Tightening) -> None:
    """Add the tightening's constraints to each branch of the field's schema whose type they name."""
    field = schema["properties"][tightening.field]
    branches = field.get("anyOf", [field])
    found = False
    for branch in branches:
        extra = tightening.constraints.get(branch.get("type", ""))
        if extra:
            branch.update(extra)
            found = True
    if not found:  # the field changed type in this axolotl: look at the tightening again
        raise SystemExit(f"cannot tighten {tightening.model}.{tightening.field}: {json.dumps(field)}")


def _yaml_numbers(node: Any) -> None:
    """Let every number also be written as a string that reads as one. PyYAML (YAML 1.1) reads `5e-4` (no
    dot) as a string and pydantic's lax mode converts it, so axolotl accepts `adam_epsilon: 1e-8`; a plain
    `number` would refuse it. The string form is its own anyOf branch, described as "a number" so that
    messages say what is expected. A number that sits next to a string branch already is left alone."""
    if isinstance(node, list):
        for item in node:
            _yaml_numbers(item)
        return
    if not isinstance(node, dict):
        return
    branches = node.get("anyOf")
    if isinstance(branches, list) and any(branch.get("type") == "string" for branch in branches):
        branches = [branch for branch in branches if branch.get("type") != "number"]
        for key, value in node.items():
            _yaml_numbers(branches if key == "anyOf" else value)
        return
    for value in node.values():
        _yaml_numbers(value)
    if node.get("type") == "number":
        number = {key: node.pop(key) for key in list(node) if key not in ANNOTATIONS}
        node["anyOf"] = [number, _written_number(number)]


def _boolean_numbers(node: Any) -> None:
    """Let a boolean stand for a number where pydantic's lax mode would take it: it reads false as 0 and
    true as 1, then applies the field's bounds, so a boolean is accepted only where its 0 or 1 is. The
    boolean joins the number's anyOf (or makes one) marked `x-lax`, which messages do not offer as what
    is expected. Runs before `_yaml_numbers`, so a number's string branch is not asked about booleans."""
    if isinstance(node, list):
        for item in node:
            _boolean_numbers(item)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key != "anyOf":
            _boolean_numbers(value)
    branches = node.get("anyOf")
    if isinstance(branches, list):
        for branch in branches:
            _boolean_numbers({key: value for key, value in branch.items() if key != "type"})
        lax = [_lax_boolean(branch) for branch in branches if branch.get("type") in ("integer", "number")]
        branches += [boolean for boolean in lax if boolean and boolean not in branches]
    elif node.get("type") in ("integer", "number") and (boolean := _lax_boolean(node)):
        number = {key: node.pop(key) for key in list(node) if key not in ANNOTATIONS}
        node["anyOf"] = [number, boolean]


def _lax_boolean(number: dict[str, Any]) -> dict[str, Any] | None:
    """The boolean branch a number schema admits under pydantic's lax mode, or None."""
    allowed = [value for value in (False, True) if _within_bounds(number, int(value))]
    if not allowed:
        return None
    boolean: dict[str, Any] = {"type": "boolean", "x-lax": True}
    if len(allowed) == 1:
        boolean["const"] = allowed[0]
    return boolean


def _within_bounds(number: dict[str, Any], value: int) -> bool:
    """Whether `value` meets a number schema's bounds (the only constraints axolotl's numbers have)."""
    checks = {
        "minimum": lambda bound: value >= bound,
        "exclusiveMinimum": lambda bound: value > bound,
        "maximum": lambda bound: value <= bound,
        "exclusiveMaximum": lambda bound: value < bound,
        "multipleOf": lambda bound: value % bound == 0,
    }
    return all(check(number[key]) for key, check in checks.items() if key in number)


def _written_number(number: dict[str, Any]) -> dict[str, Any]:
    """The string branch for a number schema, keeping a bound at zero."""
    if number.get("exclusiveMinimum") == 0:
        return {"type": "string", "pattern": POSITIVE_PATTERN, "description": "a number above 0"}
    if number.get("minimum", -1) > 0:
        described = f"a number, {number['minimum']:g} or more"
        return {"type": "string", "pattern": POSITIVE_PATTERN, "description": described}
    if number.get("minimum") == 0:
        return {"type": "string", "pattern": NON_NEGATIVE_PATTERN, "description": "a number, 0 or more"}
    return {"type": "string", "pattern": NUMBER_PATTERN, "description": "a number"}


def _json_schema(model: Any) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # defaults that JSON cannot hold (torch dtypes) are left out
        schema: dict[str, Any] = model.model_json_schema(
            mode="validation", schema_generator=_json_schema_generator()
        )
    return schema


@dataclass(frozen=True)
class Integration:
    """One of axolotl's plugins: every name a config may list it by, and its argument model (or None)."""

    names: tuple[str, ...]
    arguments: Any


def integrations() -> tuple[list[Integration], dict[str, str]]:
    """The plugins axolotl ships (axolotl.integrations.*), and the packages that could not be imported here
    (an optional dependency is missing) with the reason."""
    import axolotl.integrations
    from axolotl.integrations.base import BasePlugin

    found, failed = [], {}
    for package in sorted(pkgutil.iter_modules(axolotl.integrations.__path__), key=lambda m: m.name):
        if not package.ispkg:
            continue
        module_name = f"axolotl.integrations.{package.name}"
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            failed[module_name] = f"{type(error).__name__}: {error}"
            continue
        for _, plugin in sorted(vars(module).items()):
            if inspect.isclass(plugin) and issubclass(plugin, BasePlugin) and plugin is not BasePlugin:
                found.append(Integration(_plugin_names(package.name, plugin), _arguments(plugin())))
    return found, failed


def _plugin_names(package: str, plugin: type) -> tuple[str, ...]:
    """The names axolotl's `load_plugin` accepts for a plugin: `module.Class` for the package that exports
    it and the module that defines it, each also without the `axolotl.integrations.` prefix (load_plugin
    retries a name that does not import with that prefix)."""
    modules = dict.fromkeys([f"axolotl.integrations.{package}", plugin.__module__])
    full = [f"{module}.{plugin.__name__}" for module in modules]
    return tuple(full + [name.removeprefix("axolotl.integrations.") for name in full])


def _arguments(plugin: Any) -> Any:
    dotted = plugin.get_input_args()
    if dotted is None:
        return None
    module_name, class_name = dotted.rsplit(".", 1)
    return getattr(importlib.import_module(module_name), class_name)


def plugin_schema(schema: dict[str, Any]) -> None:
    """Give the config schema one fragment per axolotl plugin, applied when `plugins:` lists the plugin,
    and make unknown keys depend on that (unevaluatedProperties: a key is known when the config model or a
    listed plugin's fragment has it)."""
    found, failed = integrations()
    defs, rules, listing = schema.setdefault("$defs", {}), [], {}
    for integration in found:
        canonical = integration.names[0]
        listing[canonical] = list(integration.names)
        fragment: dict[str, Any] = {"properties": {}}
        if integration.arguments is not None:
            fragment = _json_schema(integration.arguments)
            for name, definition in fragment.pop("$defs", {}).items():
                if defs.setdefault(name, definition) != definition:
                    raise SystemExit(f"plugin {canonical}: $defs/{name} clashes with the config model's")
            _add_accepted_names(integration.arguments, fragment)
            _strict_defs(_models(integration.arguments), defs)
        fragment.pop("type", None)
        fragment["description"] = f"Keys axolotl reads when `plugins:` lists {canonical}."
        defs[f"plugin {canonical}"] = fragment
        rules.append(
            {
                "if": {
                    "description": f"plugins lists {canonical} (without it, axolotl drops the key)",
                    "required": ["plugins"],
                    "properties": {"plugins": {"type": "array", "contains": {"enum": listing[canonical]}}},
                },
                "then": {"$ref": f"#/$defs/plugin {canonical}"},
            }
        )
    known = [name for names in listing.values() for name in names]
    rules.append(
        {
            "if": {
                "description": "plugins lists a plugin this schema does not know",
                "required": ["plugins"],
                "properties": {"plugins": {"type": "array", "contains": {"not": {"enum": known}}}},
            },
            "then": {"unevaluatedProperties": True},  # its keys cannot be judged here
        }
    )
    schema["allOf"] = rules
    schema.pop("additionalProperties")
    schema["unevaluatedProperties"] = False
    schema["x-axolotl-plugins"] = listing
    if failed:
        schema["x-axolotl-plugins-not-generated"] = failed


def build_schema() -> dict[str, Any]:
    """The strict JSON Schema of the installed axolotl's config, deterministic for one axolotl version."""
    from axolotl.utils.schemas.config import AxolotlInputConfig

    generated = _json_schema(AxolotlInputConfig)
    models = _models(AxolotlInputConfig)
    for tightening in TIGHTENINGS:
        target = (
            generated
            if tightening.model == AxolotlInputConfig.__name__
            else generated["$defs"][tightening.model]
        )
        _tighten(target, tightening)
    _strict_model_schema(AxolotlInputConfig, generated)
    _strict_defs(models, generated.get("$defs", {}))
    plugin_schema(generated)
    _boolean_numbers(generated)
    _yaml_numbers(generated)
    axolotl_version = version("axolotl")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$comment": (
            f"Generated by scripts/generate_axolotl_schema.py from axolotl {axolotl_version} "
            "(AxolotlInputConfig and each plugin's arguments, made strict on unknown keys, with the "
            "script's tightenings). Do not edit by hand."
        ),
        "x-axolotl-version": axolotl_version,
        **generated,
        "title": "axolotl training config",
    }


def schema_text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed schema differs")
    parser.add_argument(
        "--output", type=Path, default=SCHEMA_PATH, help="the schema file (default: %(default)s)"
    )
    arguments = parser.parse_args(argv)
    text = schema_text(build_schema())
    current = arguments.output.read_text(encoding="utf-8") if arguments.output.exists() else ""
    if arguments.check:
        if current == text:
            print(f"{arguments.output}: matches axolotl {version('axolotl')}")
            return 0
        committed = json.loads(current) if current.strip() else {}
        print(
            f"{arguments.output}: out of date for axolotl {version('axolotl')} "
            f"(committed for {committed.get('x-axolotl-version', 'an unknown version')}); "
            "regenerate with: python scripts/generate_axolotl_schema.py",
            file=sys.stderr,
        )
        return 1
    from mft_recipes.output import write_text_atomic

    write_text_atomic(arguments.output, text)
    print(f"wrote {arguments.output} (axolotl {version('axolotl')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
