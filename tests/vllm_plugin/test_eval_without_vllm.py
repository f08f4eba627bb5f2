"""Without vLLM installed (a bare `pip install mft-recipes`), eval says what to install and writes nothing.
Runs in the fast tier, where vLLM really is absent; the vLLM tier deselects it (not marked vllm).
(This folder is not named tests/vllm: with tests/ on sys.path, as pytest puts it, that folder would
be a namespace package called vllm and pass for the library.)"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from mft_recipes_vllm.eval_data import EvalUsageError
from mft_recipes_vllm.evaluate import evaluate

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("vllm") is not None, reason="vLLM is installed in this environment"
)


def test_eval_without_vllm_names_the_extra_and_writes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "test.jsonl"
    data.write_text(
        '{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}\n'
    )
    output = tmp_path / "eval"
    with pytest.raises(EvalUsageError, match=r"pip install 'mft-recipes\[vllm\]'"):
        evaluate("some-model", data, output)
    assert not output.exists()
