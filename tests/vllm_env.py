"""The mft-recipes that can run `export` and `eval`: vLLM pins its own torch, so the tiers that train
(axolotl, trl) run those two commands with the vllm session's environment, which nox names in
$MFT_RECIPES_VLLM."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest


def vllm_mft_recipes() -> str:
    """The mft-recipes of the environment vLLM is installed in ($MFT_RECIPES_VLLM), or this one's."""
    given = os.environ.get("MFT_RECIPES_VLLM")
    if given:
        return given
    pytest.importorskip("vllm", reason="eval needs vLLM: set MFT_RECIPES_VLLM (nox -s axolotl and -s trl do)")
    return str(Path(sys.executable).parent / "mft-recipes")
