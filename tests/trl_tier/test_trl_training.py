"""Checks 3 and 5 of the trl tier, on tiny models with Mistral's real tokenizers and no chat template.

3. `mft-recipes trl tokenize`, `render --target trl device=cpu` and `trl sft --config FILE`, the commands a
   user types, train the recipe on CPU: every LoRA weight moves (each lora_B, zero at the start, is not
   any more), a Mixtral adapter holds expert LoRA and its run logs the router's aux loss, and
   `mft-recipes export` and `eval` (vLLM, in its own environment: $MFT_RECIPES_VLLM names that
   environment's mft-recipes, which nox's trl session sets) accept the adapter.
5. TRL's own dataset preparation (SFTTrainer, from the rendered config) of `trl tokenize`'s rows gives, for
   every conversation of tests/conversations.py, mistral-common's encode_chat_completion as input_ids and
   the trained answers and their EOS as labels.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conversations import conversations, decode, expected_trained_texts, reference_tokens, trained_spans
from tests.tiny_models import build_tiny_model
from tests.trl_tier.cases import CPU_OVERRIDES, TRAINING_RUNS
from tests.vllm_env import vllm_mft_recipes

pytestmark = [pytest.mark.trl, pytest.mark.slow, pytest.mark.usefixtures("trl_installed")]

BIN = Path(sys.executable).parent
# vLLM on CPU for a tiny model (tests/vllm_plugin/test_vllm_eval.py's settings).
ENGINE = ["--max-model-len", "512", "--kv-cache-gib", "0.25", "--dtype", "float32", "--enforce-eager"]
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "disabled", "DO_NOT_TRACK": "1"}


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env={**os.environ, **OFFLINE})
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    return result


@pytest.fixture(scope="module", params=list(TRAINING_RUNS))
def trained(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A recipe trained by `trl sft` on its tiny model: (recipe, folder with model/, config, out/)."""
    name = request.param
    moe = TRAINING_RUNS[name]
    version = "v1" if moe else "v3"
    folder = tmp_path_factory.mktemp(name)
    build_tiny_model(folder / "model", moe=moe, tokenizer=version)
    chats = [example for example in conversations(version) for _ in range(2)]
    (folder / "chat.jsonl").write_text("".join(json.dumps(chat) + "\n" for chat in chats), encoding="utf-8")
    overrides = {**CPU_OVERRIDES, "base_model": "model", "output_dir": "out"}
    words = [f"{key}={value}" for key, value in overrides.items()]
    mft = [str(BIN / "mft-recipes")]
    settings = [item for word in words if not word.startswith("dataset=") for item in ("--set", word)]
    run(
        [*mft, "trl", "tokenize", "chat.jsonl", "--recipe", name, *settings, "-o", "train.tokens.jsonl"],
        folder,
    )
    run(
        [*mft, "render", name, "--target", "trl", *words, "dataset=train.tokens.jsonl", "-o", "run.yaml"],
        folder,
    )
    result = run([str(BIN / "trl"), "sft", "--config", "run.yaml"], folder)
    (folder / "train.log").write_text(result.stdout + result.stderr, encoding="utf-8")
    return name, folder


def test_every_lora_weight_moves(trained: tuple[str, Path]) -> None:
    from safetensors.torch import load_file

    name, folder = trained
    weights = load_file(folder / "out" / "adapter_model.safetensors")
    b_matrices = {key: tensor for key, tensor in weights.items() if "lora_B" in key}
    assert b_matrices and all(float(tensor.abs().sum()) > 0 for tensor in b_matrices.values())
    config = json.loads((folder / "out" / "adapter_config.json").read_text(encoding="utf-8"))
    if TRAINING_RUNS[name]:
        assert any(".mlp.experts." in key for key in b_matrices)
        assert set(config["target_parameters"]) == {"gate_up_proj", "down_proj"}
        assert config["lora_dropout"] == 0.0
        assert "aux_loss" in (folder / "train.log").read_text(encoding="utf-8")


def test_export_and_eval_accept_the_adapter(trained: tuple[str, Path]) -> None:
    name, folder = trained
    mft = vllm_mft_recipes()
    exported = json.loads(
        run([mft, "export", "out", "--base", "model", "-o", "exported", "--json"], folder).stdout
    )
    assert exported["merged"] == TRAINING_RUNS[name]  # vLLM serves expert LoRA merged only
    test = folder / "test.jsonl"
    chats = [json.loads(line) for line in (folder / "chat.jsonl").read_text(encoding="utf-8").splitlines()]
    plain = [chat for chat in chats if "tools" not in chat and chat["messages"][-1]["role"] == "assistant"][
        :3
    ]
    test.write_text("".join(json.dumps(chat) + "\n" for chat in plain), encoding="utf-8")
    served = ["--model", "exported"] if TRAINING_RUNS[name] else ["--model", "model", "--adapter", "exported"]
    run([mft, "eval", *served, "--data", "test.jsonl", "-o", "eval", "--max-tokens", "8", *ENGINE], folder)
    assert (folder / "eval" / "metrics.json").is_file()


def test_trls_dataset_preparation_is_mistral_commons_encoding(trained: tuple[str, Path]) -> None:
    """TRL's SFTTrainer, built from the rendered config, prepares `trl tokenize`'s rows: every packed
    sequence is whole conversations, each equal to mistral-common's tokens, labelled on the answers."""
    from trl import SFTTrainer, get_dataset
    from trl.scripts.sft import make_parser

    name, folder = trained
    version = "v1" if TRAINING_RUNS[name] else "v3"
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        parsed = make_parser().parse_args_and_config(
            ["--config", "run.yaml", "--output_dir", "prepared", "--eval_strategy", "no"],
            return_remaining_strings=True,
            separate_remaining_strings=True,
        )
        _script, training, model_args, data = parsed[:4]
        data.test_split_size = None
        dataset = get_dataset(data)["train"]
        trainer = SFTTrainer(model=model_args.model_name_or_path, args=training, train_dataset=dataset)
        rows = list(trainer.train_dataset)
    finally:
        os.chdir(cwd)
    pieces: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
    for row in rows:
        start = 0
        for length in row["seq_lengths"]:
            pieces.append(
                (
                    tuple(row["input_ids"][start : start + length]),
                    tuple(row["labels"][start : start + length]),
                )
            )
            start += length
    chats = [json.loads(line) for line in (folder / "chat.jsonl").read_text(encoding="utf-8").splitlines()]
    expected = sorted(tuple(reference_tokens(version, chat)) for chat in chats)
    assert sorted(tokens for tokens, _ in pieces) == expected
    by_tokens = {tokens: labels for tokens, labels in pieces}
    for chat in chats:
        tokens = tuple(reference_tokens(version, chat))
        labels = list(by_tokens[tokens])
        texts = [decode(version, [tokens[i] for i in range(a, b)]) for a, b in trained_spans(labels)]
        assert texts == expected_trained_texts(version, chat)
