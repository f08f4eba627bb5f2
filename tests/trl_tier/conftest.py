"""The trl tier (`nox -s trl`): heavy tests need TRL and skip only when it is absent; the nox session
installs it, so in CI nothing skips."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="session")
def trl_installed() -> Any:
    return pytest.importorskip("trl", reason="the trl tier needs TRL: run `nox -s trl`")
