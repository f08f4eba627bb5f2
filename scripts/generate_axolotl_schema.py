"""Generate schemas/axolotl.schema.json from the installed axolotl's own config model.

axolotl validates its YAML with pydantic (`AxolotlInputConfig`) but drops keys it does not know without a
word, so a typo (`lora_dropuot`, `gradient_acumulation_steps`) trains with the default. This script turns
that model into a plain JSON Schema that any JSON Schema tool can use, and makes it strict: unknown keys
are errors at the top level and inside every nested axolotl model whose unknown keys axolotl would drop
(datasets, trl, vllm, fsdp_config, ...). Free-form mappings (`model_config`, an inline `deepspeed`) stay
open. Every name axolotl accepts for a field is a property: the alias (`model_config`) and the field's own
name (`overrides_of_model_config`).

    python scripts/generate_axolotl_schema.py            # rewrite schemas/axolotl.schema.json
    python scripts/generate_axolotl_schema.py --check    # exit 1 if the committed schema has drifted

Run it with the pinned axolotl installed (`nox -s axolotl` installs it); the axolotl tier runs `--check`.
"""

from __future__ import annotations

import argparse
import json
import sys
import typing
import warnings
from importlib.metadata import version
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "axolotl.schema.json"
# Names a "before" validator of axolotl's rewrites, which the pydantic schema cannot show: inside
# `fsdp_config`, `fsdp_offload_params` is the deprecated spelling of `offload_params`
# (AxolotlInputConfig.check_fsdp_config_kwargs_prefix).
DEPRECATED_PREFIXES = {"FSDPConfig": "fsdp_"}


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


def _strict_model_schema(model: Any, schema: dict[str, Any]) -> None:
    """Add the other accepted names of each field, and refuse unknown keys where axolotl drops them."""
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
    if model.model_config.get("extra") in (None, "ignore"):
        schema["additionalProperties"] = False


def build_schema() -> dict[str, Any]:
    """The strict JSON Schema of the installed axolotl's config, deterministic for one axolotl version."""
    from axolotl.utils.schemas.config import AxolotlInputConfig

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # defaults that JSON cannot hold (torch dtypes) are left out
        generated = AxolotlInputConfig.model_json_schema(
            mode="validation", schema_generator=_json_schema_generator()
        )
    models = _models(AxolotlInputConfig)
    _strict_model_schema(AxolotlInputConfig, generated)
    for name, definition in generated.get("$defs", {}).items():
        if name in models and definition.get("type") == "object":
            _strict_model_schema(models[name], definition)
    axolotl_version = version("axolotl")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$comment": (
            f"Generated by scripts/generate_axolotl_schema.py from axolotl {axolotl_version} "
            "(AxolotlInputConfig, made strict on unknown keys). Do not edit by hand."
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
