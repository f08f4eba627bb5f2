"""Check 3: a real run, end to end on CPU, exactly as a user starts one:

    mft-recipes render RECIPE base_model=<tiny> dataset=<chat jsonl> device=cpu ... | axolotl train /dev/stdin

on a tiny Mistral/Mixtral built by the test (real transformers classes, Mistral's real tokenizer of the
recipe's model, v3 or v1, with no chat template, as published base models have none; random weights).
The only overrides are the model, the data, where to write, the CPU profile and sizes that make three
optimizer steps of the tiny data. The saved adapter must differ from
its initial values (peft initialises every lora_B to zero), and on Mixtral it must hold expert LoRA
weights. axolotl must have saved the recipe's chat format with it (chat_template.jinja). The adapter then
goes through `mft-recipes export`: a dense LoRA serves as LoRA, an expert adapter must be merged, the
merged model's logits match base + adapter, and the export carries the chat format."""

from __future__ import annotations

import json
import os
import random
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mft_recipes_catalogue.chat_format import chat_template

from mft_recipes.host import get_registry
from tests.tiny_models import build_tiny_model
from tests.truth.cases import CPU_OVERRIDES, TRAINING_RUNS

pytestmark = [pytest.mark.axolotl, pytest.mark.usefixtures("axolotl_installed")]

BIN = Path(sys.executable).parent
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "disabled", "DO_NOT_TRACK": "1"}


def run_environment() -> dict[str, str]:
    return {**os.environ, **OFFLINE, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


@pytest.fixture(scope="module")
def chat_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """32 short conversations in the {"messages": [...]} shape the recipes' chat_template datasets read."""
    path = tmp_path_factory.mktemp("data") / "chat.jsonl"
    rng = random.Random(0)
    with path.open("w", encoding="utf-8") as file:
        for _ in range(32):
            a, b = rng.randint(1, 50), rng.randint(1, 50)
            messages = [
                {"role": "user", "content": f"What is {a} plus {b}?"},
                {"role": "assistant", "content": f"{a} plus {b} is {a + b}."},
            ]
            file.write(json.dumps({"messages": messages}) + "\n")
    return path


def render_and_train(name: str, base: Path, data: Path, output: Path) -> subprocess.CompletedProcess[str]:
    overrides = {"base_model": str(base), "dataset": str(data), "output_dir": str(output), **CPU_OVERRIDES}
    words = " ".join(shlex.quote(f"{key}={value}") for key, value in overrides.items())
    command = (
        f"set -o pipefail; {shlex.quote(str(BIN / 'mft-recipes'))} render {name} {words}"
        f" | {shlex.quote(str(BIN / 'axolotl'))} train /dev/stdin --launcher python"
    )
    return subprocess.run(
        ["bash", "-c", command],
        capture_output=True,
        text=True,
        env=run_environment(),
        cwd=output.parent,
        timeout=1200,
    )


def export(adapter: Path, base: Path) -> dict[str, Any]:
    result = subprocess.run(
        [str(BIN / "mft-recipes"), "export", str(adapter), "--base", str(base), "--json"],
        capture_output=True,
        text=True,
        env=run_environment(),
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    exported: dict[str, Any] = json.loads(result.stdout)
    return exported


@pytest.mark.parametrize("name", list(TRAINING_RUNS))
def test_render_piped_into_axolotl_train_trains_the_adapter(
    name: str, tmp_path: Path, chat_data: Path
) -> None:
    from safetensors.torch import load_file

    moe = TRAINING_RUNS[name]["moe"]
    version = get_registry().architectures[get_registry().recipes[name].model].tokenizer
    base = build_tiny_model(tmp_path / "base", moe=moe, tokenizer=version)
    output = tmp_path / "out"
    result = render_and_train(name, base, chat_data, output)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]

    weights = load_file(str(output / "adapter_model.safetensors"))
    lora_b = {key: tensor for key, tensor in weights.items() if ".lora_B." in key}
    assert lora_b, sorted(weights)
    untrained = [key for key, tensor in lora_b.items() if not tensor.abs().sum() > 0]
    assert untrained == [], "LoRA weights still at their initial zeros"
    config = json.loads((output / "adapter_config.json").read_text())
    if moe:
        assert {"gate_up_proj", "down_proj"} <= set(config["target_parameters"])
        expert_keys = [key for key in lora_b if ".mlp.experts." in key]
        assert len(expert_keys) == 2 * 2  # gate_up_proj and down_proj in each of the 2 layers

    # axolotl saved the trained format with the adapter (chat_template: jinja), and export passes it on.
    assert (output / "chat_template.jinja").read_text() == chat_template(version)
    exported = export(output, base)
    assert exported["chat_format"]["mistral_version"] == version
    assert (Path(exported["output"]) / "chat_template.jinja").read_text() == chat_template(version)
    assert exported["merged"] is moe
    assert exported["servable_as_lora"] is not moe
    if moe:
        assert "moe-experts" in {reason["code"] for reason in exported["reasons"]}
        assert exported["logits_check"]["passed"] is True
