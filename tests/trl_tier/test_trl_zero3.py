"""Check 4 of the trl tier: a DeepSpeed recipe rendered for TRL (`render --target trl device=cpu -o`) runs
as the printed command runs it, `accelerate launch --config_file ACCELERATE -m trl.scripts.sft --config
CONFIG`, on two CPU ranks over gloo (`--num_processes 2` instead of the recipe's GPUs) on a tiny model:
ZeRO-3 partitions the model and optimizer states over both ranks (DeepSpeed writes one state file per
rank), three or more optimizer steps run, and the gathered 16-bit model (or adapter) is saved."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tiny_models import build_tiny_model
from tests.trl_tier.cases import trl_recipes, uses_deepspeed

pytestmark = [pytest.mark.trl, pytest.mark.slow, pytest.mark.usefixtures("trl_installed")]

BIN = Path(sys.executable).parent
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "disabled", "DO_NOT_TRACK": "1"}
RECIPES = {recipe.name: recipe for recipe in trl_recipes() if uses_deepspeed(recipe)}
# One packed sequence per rank per optimizer step.
OVERRIDES = {
    "device": "cpu",
    "sequence_len": 128,
    "micro_batch_size": 1,
    "gradient_accumulation_steps": 1,
    "num_epochs": 1,
    "val_set_size": 0,
    "learning_rate": 0.0001,
}


def tokens(version: str) -> str:
    from mft_recipes_catalogue.chat_format import MistralChat

    chat = MistralChat(version)
    rows = []
    for step in range(60):  # packed into 128-token sequences: three or more steps on each rank
        example = {
            "messages": [
                {"role": "user", "content": f"{step} plus 2?"},
                {"role": "assistant", "content": f"{step + 2}"},
            ]
        }
        encoded = chat.encode(example)
        rows.append(
            {"input_ids": encoded.tokens, "assistant_masks": [int(label != -100) for label in encoded.labels]}
        )
    return "".join(json.dumps(row) + "\n" for row in rows)


def test_the_deepspeed_recipes() -> None:
    assert {"mistral-7b-full", "mixtral-8x22b"} <= set(RECIPES)


@pytest.mark.parametrize("name", list(RECIPES))
def test_two_cpu_ranks_train_the_zero3_setup(name: str, tmp_path: Path) -> None:
    moe = "Mixtral" in RECIPES[name].model
    build_tiny_model(tmp_path / "model", moe=moe, tokenizer="v3")
    (tmp_path / "train.tokens.jsonl").write_text(tokens("v3"), encoding="utf-8")
    words = [f"{key}={value}" for key, value in OVERRIDES.items()]
    render = [str(BIN / "mft-recipes"), "render", name, "--target", "trl", *words, "base_model=model"]
    render += ["dataset=train.tokens.jsonl", "output_dir=out", "-o", "run.yaml"]
    rendered = subprocess.run(render, cwd=tmp_path, capture_output=True, text=True, check=True)
    launch = rendered.stderr.split("launch: ", 1)[1].strip()
    assert (
        launch == "accelerate launch --config_file run.accelerate.yaml -m trl.scripts.sft --config run.yaml"
    )
    command = [
        str(BIN / "accelerate"),
        "launch",
        "--config_file",
        "run.accelerate.yaml",
        "--num_processes",
        "2",
    ]
    command += ["-m", "trl.scripts.sft", "--config", "run.yaml"]
    done = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, env={**os.environ, **OFFLINE}
    )
    assert done.returncode == 0, done.stderr[-6000:]
    import torch

    states = sorted((tmp_path / "out").glob("checkpoint-*/global_step*/zero_pp_rank_*_optim_states.pt"))
    assert [path.name.split("_")[3] for path in states] == ["0", "1"]
    optimizer = torch.load(states[0], map_location="cpu", weights_only=False)
    assert optimizer["ds_config"]["zero_optimization"]["stage"] == 3
    state = json.loads(next((tmp_path / "out").glob("checkpoint-*/trainer_state.json")).read_text())
    assert state["global_step"] >= 3
    saved = "adapter_model.safetensors" if RECIPES[name].method != "full" else "model.safetensors"
    assert (tmp_path / "out" / saved).is_file()
