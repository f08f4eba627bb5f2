"""Regenerate the hook reference in docs/plugins.md from the hookspecs (mft_recipes/hookspecs.py).

The reference sits between `<!-- hooks:start -->` and `<!-- hooks:end -->`: how the host calls hooks
(the hookspecs module's docstring), then each hook with its typed signature, its docstring and its
arguments (the `:param NAME:` entries), registration hooks first, in the order they are called.

    python scripts/update_plugin_docs.py           # rewrite docs/plugins.md
    python scripts/update_plugin_docs.py --check   # exit 1 if docs/plugins.md is not current (tests and CI)
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # `python scripts/update_plugin_docs.py` finds scripts.markers as pytest does

from mft_recipes import hookspecs  # noqa: E402
from scripts.markers import update_part  # noqa: E402

PLUGINS_DOC = REPO / "docs" / "plugins.md"
PART = "hooks"
REGISTRATION_PREFIX = "register_"
# (title, what it says, whether it holds the registration hooks)
SECTIONS = (
    (
        "Registration hooks",
        "Called once per process, when the registry is built, in the order below (`register_commands` "
        "when the console script starts, after that). Call `register` once per thing the plugin "
        "contributes. Names are first come, first served: a name already taken is skipped, and the "
        "warning names both plugins.",
        True,
    ),
    ("Per-call hooks", "Called each time the host does what the hook is about.", False),
)
_PARAM = re.compile(r"^:param (\w+):[ \n]", re.MULTILINE)


def hooks() -> list[Callable[..., Any]]:
    """The hookspecs, in the order hookspecs.py declares them."""
    return [value for value in vars(hookspecs).values() if hasattr(value, "mft_recipes_spec")]


def signature(hook: Callable[..., Any]) -> str:
    """`def name(argument: type, ...) -> type`, with the annotations as written in hookspecs.py."""
    parameters = inspect.signature(hook).parameters.values()
    arguments = ", ".join(f"{parameter.name}: {parameter.annotation}" for parameter in parameters)
    return f"def {hook.__name__}({arguments}) -> {inspect.signature(hook).return_annotation}"


def described(hook: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    """A hook's docstring: the text before its `:param NAME:` entries, and each entry's text on one line."""
    text = inspect.getdoc(hook) or ""
    entries = _PARAM.split(text)
    arguments = {
        name: " ".join(entry.split()) for name, entry in zip(entries[1::2], entries[2::2], strict=True)
    }
    return entries[0].strip(), arguments


def _hook_text(hook: Callable[..., Any]) -> Iterator[str]:
    description, arguments = described(hook)
    names = ", ".join(inspect.signature(hook).parameters)
    yield f"#### `{hook.__name__}({names})`"
    yield f"```python\n{signature(hook)}\n```"
    yield description
    yield "\n".join(f"- `{name}`: {text}" for name, text in arguments.items())


def reference() -> str:
    """The Markdown of the hook reference: how hooks are called (the hookspecs' docstring but its first
    paragraph), then each section's hooks."""
    _, contract = (inspect.getdoc(hookspecs) or "").split("\n\n", 1)
    blocks = [contract.strip()]
    for title, intro, registration in SECTIONS:
        blocks += [f"### {title}", intro]
        for hook in hooks():
            if hook.__name__.startswith(REGISTRATION_PREFIX) == registration:
                blocks += _hook_text(hook)
    return "\n\n".join(blocks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/plugins.md is not current")
    args = parser.parse_args(argv)
    return update_part(
        PLUGINS_DOC, PART, reference(), check=args.check, command="python scripts/update_plugin_docs.py"
    )


if __name__ == "__main__":
    sys.exit(main())
