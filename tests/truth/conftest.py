"""The truth tier (`nox -s axolotl`): heavy tests need axolotl and skip only when it is absent; the nox
session installs it, so in CI nothing skips."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="session")
def axolotl_installed() -> Any:
    return pytest.importorskip("axolotl", reason="the truth tier needs axolotl: run `nox -s axolotl`")
