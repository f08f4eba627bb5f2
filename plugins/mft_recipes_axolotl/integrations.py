"""axolotl plugins (`plugins:`) in a config: which ones the schema knows, and what is left unchecked.

axolotl merges the argument model of each listed plugin into its config model before validating
(`prepare_plugins`, then `axolotl.integrations.config.merge_input_args`), so a plugin's keys
(`liger_rope`, `use_scattermoe`, ...) are known only when the plugin is listed. The schema carries one
fragment per plugin axolotl ships (scripts/generate_axolotl_schema.py) and applies it when `plugins:`
lists the plugin; a key of a plugin that is not listed is an unknown key there, which axolotl drops.

A listed plugin the schema does not know (a third party's, or one whose dependency was missing when the
schema was generated) may add any key, so the schema accepts every key while it is listed. This
validator says so: a warning for the plugin, and a warning (with a did-you-mean) for each key that is
neither axolotl's nor a listed known plugin's, since it may be a typo as well as that plugin's key.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any

from mft_recipes import Problem, ValidationContext, load_schema

SCHEMA = "axolotl"
PREFIX = "axolotl.integrations."


def known_plugins(schema: dict[str, Any]) -> dict[str, str]:
    """{every name a config may list a plugin by: the plugin's canonical name}."""
    listing: dict[str, list[str]] = schema.get("x-axolotl-plugins", {})
    return {name: canonical for canonical, names in listing.items() for name in names}


def plugin_keys(schema: dict[str, Any], canonical: str) -> set[str]:
    """The keys a known plugin adds to the config."""
    return set(schema["$defs"][f"plugin {canonical}"].get("properties", {}))


def check_plugins(document: dict[str, Any], context: ValidationContext) -> Iterator[Problem]:
    listed = document.get("plugins")
    if not isinstance(listed, list):
        return
    schema = load_schema(SCHEMA)
    known = known_plugins(schema)
    version = schema.get("x-axolotl-version", "")
    unknown = []
    for index, name in enumerate(listed):
        if not isinstance(name, str) or name in known:
            continue
        unknown.append(name)
        yield Problem(
            f"{name!r} is not a plugin that axolotl {version} ships ({_why_unknown(name, schema)}); the keys "
            "it adds cannot be checked here, so unknown keys are warnings while it is listed",
            ("plugins", index),
            code="unknown-plugin",
            severity="warning",
        )
    if not unknown:
        return
    allowed = set(schema["properties"]).union(
        *(plugin_keys(schema, known[name]) for name in listed if isinstance(name, str) and name in known)
    )
    for key in document:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), sorted(allowed), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            yield Problem(
                f"unknown key {key!r}{hint} Not refused: {', '.join(unknown)} may add it (axolotl drops it "
                "otherwise)",
                (key,),
                code="unchecked-key",
                severity="warning",
            )


def _why_unknown(name: str, schema: dict[str, Any]) -> str:
    """Why the schema does not know a plugin: its package could not be imported when it was generated,
    or it is not one of axolotl's (a close name may be a typo)."""
    for package, reason in schema.get("x-axolotl-plugins-not-generated", {}).items():
        if name.startswith(package + ".") or PREFIX + name.split(".", 1)[0] == package:
            return f"its package {package} could not be imported when the schema was generated: {reason}"
    close = difflib.get_close_matches(name, sorted(known_plugins(schema)), n=1, cutoff=0.9)
    return f"did you mean {close[0]}?" if close else "a third party's plugin, or a typo"
