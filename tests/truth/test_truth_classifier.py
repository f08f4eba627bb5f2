"""The product classifier's whole path on CPU, with the CLI only, as a user runs it (docs/classifier.md):

    data convert → data split → data check --recipe → render mistral-7b-classifier device=cpu →
    axolotl train → export → eval --task classification

on a synthetic catalogue of 60 leaves in three levels whose names and descriptions carry the path
(tests/products.py), and a tiny Mistral built by the test (Mistral's real v3 tokenizer, random
weights). The adapter must beat the base model on held-out top-1 over the full path, and the report must
hold the per-level table. The overrides are the model, the data, where to write, the CPU profile and
what makes two minutes of CPU training learn: short sequences, a higher learning rate.

`export` and `eval` need vLLM, which pins another torch than axolotl: they run in the vllm session's
environment ($MFT_RECIPES_VLLM names its mft-recipes; nox's axolotl session sets it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.products import products, write_csv
from tests.tiny_models import build_tiny_model
from tests.vllm_env import vllm_mft_recipes

pytestmark = [pytest.mark.axolotl, pytest.mark.slow, pytest.mark.usefixtures("axolotl_installed")]

BIN = Path(sys.executable).parent
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "disabled", "DO_NOT_TRACK": "1"}
# vLLM on CPU for a tiny model (tests/vllm_plugin/test_vllm_eval.py's settings).
ENGINE = ["--max-model-len", "512", "--kv-cache-gib", "0.25", "--dtype", "float32", "--enforce-eager"]
TRAINING = {
    "device": "cpu",
    "sequence_len": 256,
    "micro_batch_size": 8,
    "gradient_accumulation_steps": 1,
    "num_epochs": 3,
    "learning_rate": 0.01,
    "val_set_size": 0,
}


def run(cwd: Path, *command: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **OFFLINE, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=environment)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    return result


def test_the_classifier_path_beats_the_base_model(tmp_path: Path) -> None:
    mft = str(BIN / "mft-recipes")
    build_tiny_model(tmp_path / "model", tokenizer="v3")
    write_csv(tmp_path / "products.csv", products(1200, leaves=60, seed=3, sentences=(0, 1)))
    user, system = "{name}\n{description}", "Answer with the product's category path."
    run(tmp_path, mft, "data", "convert", "products.csv", "-o", "products.jsonl", "--user", user,
        "--path-column", "category", "--system", system)  # fmt: skip
    run(tmp_path, mft, "data", "split", "products.jsonl", "--train", "train.jsonl", "--validation",
        "test.jsonl", "--count", "120", "--stratify", "answer")  # fmt: skip
    checked = run(
        tmp_path, mft, "data", "check", "train.jsonl", "--recipe", "mistral-7b-classifier", "--json"
    )
    report = json.loads(checked.stdout)
    assert report["valid"] and len(report["files"][0]["labels"]["path"]) == 60
    words = [f"{key}={value}" for key, value in TRAINING.items()]
    run(tmp_path, mft, "render", "mistral-7b-classifier", "base_model=model", "dataset=train.jsonl",
        "output_dir=out", *words, "-o", "run.yaml")  # fmt: skip
    run(tmp_path, str(BIN / "axolotl"), "train", "run.yaml")
    served = vllm_mft_recipes()
    run(tmp_path, served, "export", "out", "--base", "model", "-o", "exported")
    run(tmp_path, served, "eval", "--model", "model", "--adapter", "exported", "--data", "test.jsonl",
        "--task", "classification", "-o", "eval", "--latency-requests", "0", *ENGINE)  # fmt: skip
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text(encoding="utf-8"))
    base, adapter = (metrics["models"][name]["levels"]["top1_by_logprob"] for name in ("base", "adapter"))
    assert len(base) == len(adapter) == 3
    assert adapter[-1] > base[-1], (base, adapter)
    assert "| 3 (full path) |" in (tmp_path / "eval" / "report.md").read_text(encoding="utf-8")
