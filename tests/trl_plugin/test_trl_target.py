"""The trl target in the fast tier (no TRL): what `render --target trl` writes, refuses and prints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from mft_recipes.cli import cli


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_a_single_gpu_recipe_renders_a_trl_config() -> None:
    result = invoke("render", "mistral-7b-qlora", "--target", "trl", "dataset=train.tokens.jsonl")
    assert result.exit_code == 0, result.output
    config = yaml.safe_load(result.stdout)
    assert config["model_name_or_path"] == "mistralai/Mistral-7B-v0.3"
    assert config["use_peft"] and config["load_in_4bit"] and config["dtype"] == "bfloat16"
    assert config["datasets"] == [{"path": "json", "data_files": "train.tokens.jsonl"}]
    assert "# Launch: trl sft --config" in result.stdout


def test_the_mixtral_experts_and_router_logits_carry_over() -> None:
    result = invoke("render", "mixtral-moe", "--target", "trl", "device=cpu", "dataset=t.jsonl")
    config = yaml.safe_load(result.stdout)
    assert {"w1", "w2", "w3"} <= set(config["lora_target_modules"])
    assert config["lora_dropout"] == 0.0
    assert config["model_init_kwargs"] == {"output_router_logits": True}


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["mixtral-moe", "dataset=t.jsonl"], "quantize_moe_experts: TRL cannot express it"),
        (["platform-mistral-7b", "training_file=x"], "renders for la-plateforme, not for 'trl'"),
        (["mistral-7b-lora", "dataset=t.jsonl", "chat_template=tokenizer_default"], "Mistral's exact chat"),
        (["mistral-7b-full", "dataset=t.jsonl"], "give -o FILE"),
    ],
)
def test_what_trl_cannot_express_is_refused_with_the_reason(args: list[str], needle: str) -> None:
    result = invoke("render", *args, "--target", "trl")
    assert result.exit_code == 2
    assert needle in result.stderr


def test_a_deepspeed_recipe_writes_its_accelerate_config_and_the_launch(tmp_path: Path) -> None:
    out = tmp_path / "full.yaml"
    result = invoke("render", "mistral-7b-full", "--target", "trl", "dataset=t.jsonl", "-o", str(out))
    assert result.exit_code == 0, result.output
    accelerate = yaml.safe_load((tmp_path / "full.accelerate.yaml").read_text())
    assert accelerate["distributed_type"] == "DEEPSPEED" and accelerate["num_processes"] == 8
    assert accelerate["deepspeed_config"]["zero_stage"] == 3
    launch = f"accelerate launch --config_file {tmp_path / 'full.accelerate.yaml'} -m trl.scripts.sft --config {out}"
    assert f"launch: {launch}" in result.stderr


def test_validate_tells_a_trl_config_and_refuses_unknown_keys_and_untokenized_data(tmp_path: Path) -> None:
    (tmp_path / "chat.jsonl").write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n")
    config = {
        "model_name_or_path": "mistralai/Mixtral-8x7B-v0.1",
        "use_peft": True,
        "lora_target_modules": ["all-linear"],
        "datasets": [{"path": "json", "data_files": "chat.jsonl"}],
        "lora_rank": 8,
    }
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    result = invoke("validate", "--cwd", str(tmp_path), "--json", str(tmp_path / "run.yaml"))
    assert result.exit_code == 1
    report = json.loads(result.stdout)["files"][0]
    assert report["kind"] == "trl"
    codes = {problem["code"] for problem in report["problems"]}
    assert {"unknown-key", "moe-experts-not-trained", "trl-data-not-tokenized"} <= codes


def test_show_and_list_name_the_targets() -> None:
    shown = json.loads(invoke("show", "mistral-7b-lora", "--json").stdout)
    assert shown["targets"] == ["axolotl", "trl"]
    assert "targets axolotl, trl (render --target trl)" in invoke("show", "mistral-7b-lora").stdout
