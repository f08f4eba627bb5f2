"""Tiny models, adapters and test sets for the vLLM tier, built once per session, offline.

The adapters are real peft adapters with non-zero LoRA B (peft initialises B to zero, which would make
every adapter the identity and every comparison trivially true).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.vllm_plugin.reference import LABELS, make_adapter, write_jsonl

# vLLM's engine core in this process (vllm/envs.py, VLLM_ENABLE_V1_MULTIPROCESSING: no worker process to
# start or leak), set before anything imports vllm, which reads it then.
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")


@pytest.fixture(scope="session")
def tiny_mistral(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers")
    from tests.tiny_models import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-mistral"))


@pytest.fixture(scope="session")
def tiny_mixtral(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers")
    from tests.tiny_models import build_tiny_model

    return build_tiny_model(
        tmp_path_factory.mktemp("tiny-mixtral"), moe=True, tokenizer="v1"
    )  # Mixtral 8x7B's


@pytest.fixture(scope="session")
def dense_adapter(tiny_mistral: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("peft")
    return make_adapter(
        tiny_mistral,
        tmp_path_factory.mktemp("adapters") / "dense",
        r=8,
        lora_alpha=16,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    )


@pytest.fixture(scope="session")
def expert_adapter(tiny_mixtral: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What axolotl writes for the mixtral-moe recipe: attention modules plus the fused experts
    (peft target_parameters)."""
    pytest.importorskip("peft")
    return make_adapter(
        tiny_mixtral,
        tmp_path_factory.mktemp("adapters") / "experts",
        r=8,
        lora_alpha=16,
        target_modules=["q_proj", "v_proj"],
        target_parameters=["mlp.experts.gate_up_proj", "mlp.experts.down_proj"],
    )


@pytest.fixture(scope="session")
def classification_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"Categorise: product {i}, item {i * 7}"},
                {"role": "assistant", "content": LABELS[i % len(LABELS)]},
            ]
        }
        for i in range(8)
    ]
    return write_jsonl(tmp_path_factory.mktemp("data") / "classification.jsonl", rows)


@pytest.fixture(scope="session")
def generation_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = [
        {
            "messages": [
                {"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": f"What is {i} plus {i}?"},
                {"role": "assistant", "content": f"The answer is {2 * i}."},
            ]
        }
        for i in range(10)
    ]
    return write_jsonl(tmp_path_factory.mktemp("data") / "generation.jsonl", rows)
