"""Where the data that ships with mft-recipes (recipes/, schemas/) is found.

In a wheel the two folders are packaged inside `mft_recipes/`; in a source checkout (editable install,
tests) they stand at the top of the repository, next to the package.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def packaged_dir(name: str) -> Path:
    """The folder `name` ("recipes" or "schemas") shipped with this installation."""
    inside = _PACKAGE / name
    if inside.is_dir():
        return inside
    return _PACKAGE.parent / name
