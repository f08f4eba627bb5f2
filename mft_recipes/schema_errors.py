"""jsonschema's errors as Problems for people: each one names the key path it is about and says what was
expected, and none repeats a mapping or a list from the document (which may be long, or hold a secret).

jsonschema reports a value that fits no branch of an `anyOf`/`oneOf` as the whole value "is not valid
under any of the given schemas"; its sub-errors (`error.context`) say why each branch failed. Here the
branches whose type the value does not even have are set aside (`lora_r: "sixteen"` is neither an
integer nor null: "expected an integer, got 'sixteen'"), and the errors of the branch that fits best are
explained instead, down to the offending key (`datasets[0].typ`: unknown key; did you mean type?).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any

from mft_recipes.problems import KeyPath, Problem

TYPE_WORDS = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}
COMPARISONS = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}
LONGEST_VALUE = 60


def describe(value: Any) -> str:
    """A value as a message may show it: scalars as written (shortened), containers by their kind only."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= LONGEST_VALUE else text[: LONGEST_VALUE - 4] + "...'"


def problems_of(error: Any, validator: Any, path: KeyPath = ()) -> Iterator[Problem]:
    """The Problems one jsonschema error of `validator` stands for, at `path` (where its parent error
    points)."""
    where: KeyPath = (*path, *error.relative_path)
    kind = error.validator
    if kind in ("anyOf", "oneOf") and error.context:
        yield from _alternatives(error, validator, where)
    elif kind in ("additionalProperties", "unevaluatedProperties") and isinstance(error.instance, dict):
        yield from _unknown_keys(error, validator, where)
    elif kind == "required":
        for key in error.validator_value:
            if isinstance(error.instance, dict) and key not in error.instance:
                yield Problem("required key is missing", (*where, key), code="schema-required")
    elif kind == "dependentRequired":
        for key, needed in error.validator_value.items():
            for missing in needed if isinstance(error.instance, dict) and key in error.instance else ():
                if missing not in error.instance:
                    message = f"required key is missing (it goes with {key!r})"
                    yield Problem(message, (*where, missing), code="schema-required")
    elif kind is None:
        # A `false` subschema: jsonschema's message would repeat the value, which may be a secret, and
        # its path stops at the mapping that holds the key (jsonschema 4.26 drops the key itself).
        keys = _keys_refused_by_false(error, validator)
        for at in [(*where, key) for key in keys] or [where]:
            yield Problem("a value is given where none is allowed", at, code="schema-not-allowed")
    else:
        yield Problem(_message(error), where, code=f"schema-{kind}")


def _message(error: Any) -> str:
    """What one leaf error expected, and what it got, without the value when it is a container."""
    kind, expected, got = error.validator, error.validator_value, describe(error.instance)
    if kind == "type":
        return f"expected {_types([expected] if isinstance(expected, str) else expected)}, got {got}"
    if kind == "enum":
        shown = ", ".join(describe(choice) for choice in expected[:12])
        more = f" (and {len(expected) - 12} more)" if len(expected) > 12 else ""
        return f"expected one of {shown}{more}, got {got}"
    if kind == "const":
        return f"expected {describe(expected)}, got {got}"
    if kind in COMPARISONS:
        return f"expected a number {COMPARISONS[kind]} {expected}, got {got}"
    if kind == "minLength":
        return "expected a non-empty string" if expected == 1 else f"expected at least {expected} characters"
    if kind == "maxLength":
        return f"expected at most {expected} characters"
    if kind in ("minItems", "maxItems"):
        bound = "at least" if kind == "minItems" else "at most"
        return f"expected {bound} {expected} item{'s' if expected != 1 else ''}, got {len(error.instance)}"
    if kind == "pattern":
        wanted = error.schema.get("description") or f"a string matching {expected!r}"
        return f"expected {wanted}, got {got}"
    if kind == "format":
        return f"expected a {expected}, got {got}"
    if kind == "not":
        return f"{got} is not allowed here"
    if kind == "oneOf":
        return "fits more than one of the allowed shapes; make it match exactly one"
    if kind == "multipleOf":
        return f"expected a multiple of {expected}, got {got}"
    if kind == "uniqueItems":
        return "expected items without repeats"
    if kind in ("minProperties", "maxProperties"):
        bound = "at least" if kind == "minProperties" else "at most"
        return f"expected {bound} {expected} key{'s' if expected != 1 else ''}, got {len(error.instance)}"
    return f"fails the schema's {kind} rule (got {got})"


def _types(names: list[str]) -> str:
    """`["integer", "null"]` → "an integer": null only says the key may be left empty."""
    return _either([TYPE_WORDS.get(name, name) for name in names if name != "null"] or ["null"])


def _either(words: list[str]) -> str:
    return " or ".join(dict.fromkeys(words))


def _alternatives(error: Any, validator: Any, where: KeyPath) -> Iterator[Problem]:
    """Explain an anyOf/oneOf failure by the branch that fits the value best."""
    branches: dict[Any, list[Any]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    fitting = [errors for errors in branches.values() if not all(_wrong_type(sub) for sub in errors)]
    if not fitting:
        expected = [word for errors in branches.values() for word in _expected(errors)]
        message = f"expected {_either(expected or ['null'])}, got {describe(error.instance)}"
        yield Problem(message, where, code="schema-type")
        return
    # The branch with the fewest complaints, each unknown key counted, then the first (pydantic lists a
    # field's types in order): a DPO dataset entry is closer to DPODataset than to SFTDataset.
    best = min(fitting, key=lambda errors: sum(map(_weight, errors)))
    for sub in best:
        yield from problems_of(sub, validator, where)


def _weight(error: Any) -> int:
    """How many problems an error stands for: one per unknown key, else one."""
    if error.validator in ("additionalProperties", "unevaluatedProperties") and isinstance(
        error.instance, dict
    ):
        known = error.schema.get("properties", {})
        return max(1, sum(key not in known for key in error.instance))
    return 1


def _wrong_type(error: Any) -> bool:
    """A branch error that only says the value is not of the branch's kind at all: the wrong type, or
    none of a list of names when the value is not even of their type (a mapping for an optimizer name)."""
    if error.relative_path:
        return False
    if error.validator == "type" or error.schema.get("x-lax"):  # a lax boolean explains no other value
        return True
    if error.validator in ("enum", "const"):
        allowed = error.validator_value if error.validator == "enum" else [error.validator_value]
        return not any(_json_type(value) == _json_type(error.instance) for value in allowed)
    return False


def _json_type(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "boolean" if isinstance(value, bool) else "null"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, dict):
        return "object"
    return "array" if isinstance(value, list) else "string" if isinstance(value, str) else "other"


def _expected(errors: list[Any]) -> list[str]:
    """What one branch wanted, in words: its value or its few names, else its types."""
    words: list[str] = []
    # A branch marked x-lax (a boolean where a number is expected, which pydantic reads as 0 or 1) is
    # accepted but not offered: "expected an integer", not "an integer or true or false".
    errors = [error for error in errors if not error.schema.get("x-lax")]
    for error in errors:
        value = error.validator_value
        if error.validator == "const":
            words.append(describe(value))
        elif error.validator == "enum":
            names = [describe(choice) for choice in value if choice is not None]
            words += names if len(names) <= 4 else [f"one of {len(names)} names"]
    if words:
        return words
    for error in errors:
        if error.validator == "type" and error.schema.get("pattern") and error.schema.get("description"):
            return [error.schema["description"]]  # a string of a described form ("a number")
    typed = [
        (name, error.schema)
        for error in errors
        if error.validator == "type"
        for name in _listed(error.validator_value)
    ]
    return [
        _number_words(schema) if name == "number" else TYPE_WORDS.get(name, name)
        for name, schema in typed
        if name != "null"
    ]


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _number_words(schema: dict[str, Any]) -> str:
    """A number with its lower bound, in the words a number written as a string is described with."""
    if schema.get("exclusiveMinimum") is not None:
        return f"a number above {schema['exclusiveMinimum']:g}"
    if schema.get("minimum") is not None:
        return f"a number, {schema['minimum']:g} or more"
    return "a number"


def _unknown_keys(error: Any, validator: Any, where: KeyPath) -> Iterator[Problem]:
    """One problem per unknown key, with the names it may be a typo of, or the condition that allows it."""
    allowed, conditional = _known_keys(error.schema, error.instance, validator)
    for key in sorted((key for key in error.instance if key not in allowed), key=str):
        if key in conditional:
            message = f"unknown key {key!r} here: it is allowed only when {conditional[key]}"
        else:
            close = difflib.get_close_matches(str(key), sorted(allowed), n=3)
            message = f"unknown key {key!r}" + (f"; did you mean {', '.join(close)}?" if close else "")
        yield Problem(message, (*where, key), code="unknown-key")


def _known_keys(
    schema: dict[str, Any], instance: dict[str, Any], validator: Any
) -> tuple[set[str], dict[str, str]]:
    """The keys `schema` allows for `instance`: its properties, plus those of each `allOf` if/then rule
    whose condition holds (with `unevaluatedProperties`), and {key: condition} for the rules that do not
    hold (the condition's description says what would allow the key)."""
    allowed = set(schema.get("properties", {}))
    conditional: dict[str, str] = {}
    for rule in schema.get("allOf", ()):
        if "if" not in rule:
            continue
        then = _resolved(rule.get("then", {}), validator.schema)
        keys = set(then.get("properties", {}))
        if validator.evolve(schema=rule["if"]).is_valid(instance):
            allowed |= keys
        else:
            for key in keys:
                conditional.setdefault(key, rule["if"].get("description", "a condition holds"))
    return allowed, conditional


def _resolved(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """`schema`, or what its local `$ref` ("#/$defs/name") points at in `root`."""
    reference = schema.get("$ref")
    if not isinstance(reference, str) or not reference.startswith("#/"):
        return schema
    node: Any = root
    for part in reference[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return dict(node)


def _keys_refused_by_false(error: Any, validator: Any) -> list[str]:
    """The keys whose subschema is `false` under the `properties` a `false`-schema error comes from."""
    path = list(error.absolute_schema_path)
    if not path or path[-1] != "properties":
        return []
    node: Any = validator.schema
    try:
        for part in path:  # a path through a $ref does not lead anywhere here: then the mapping is named
            node = node[part] if isinstance(node, dict) else node[int(part)]
    except (KeyError, IndexError, TypeError, ValueError):
        return []
    return [key for key, subschema in node.items() if subschema is False]
