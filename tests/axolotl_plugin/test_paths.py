"""Relative paths resolve as axolotl resolves them: against the directory it is launched from (the process's
working directory, or `validate --cwd DIR`), not the config file's folder; a file that exists only next to
the config is reported as such. Run through the real CLI in a subprocess, so the working directory is real.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.truth.cases import PUBLISHED

# The shape of axolotl's deepspeed_configs/zero3_bf16.json, which its examples name by a relative path.
ZERO3 = {
    "zero_optimization": {
        "stage": 3,
        "overlap_comm": True,
        "stage3_gather_16bit_weights_on_model_save": True,
    },
    "bf16": {"enabled": "auto"},
    "gradient_accumulation_steps": "auto",
    "train_batch_size": "auto",
    "train_micro_batch_size_per_gpu": "auto",
}
# Close to axolotl's examples/mistral/bigstral/bigstral-ds-zero3.yaml: a DeepSpeed file named relative to
# the launch directory, as `axolotl fetch deepspeed_configs` lays it out.
CONFIG = """\
base_model: mistralai/Mistral-7B-v0.3
datasets:
  - path: data/train.jsonl
    type: alpaca
output_dir: ./outputs/out
sequence_len: 2048
micro_batch_size: 1
gradient_accumulation_steps: 1
num_epochs: 1
optimizer: adamw_torch
learning_rate: 0.0001
bf16: auto
deepspeed: deepspeed_configs/zero3_bf16.json
"""


def validate(config: Path, *options: str, cwd: Path) -> tuple[int, list[dict[str, Any]]]:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        [sys.executable, "-m", "mft_recipes", "validate", "--json", *options, str(config)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment,
    )
    return result.returncode, json.loads(result.stdout)["files"][0]["problems"]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder: the config, its DeepSpeed file and its data, laid out for a launch from there."""
    folder = tmp_path / "project"
    (folder / "deepspeed_configs").mkdir(parents=True)
    (folder / "deepspeed_configs" / "zero3_bf16.json").write_text(json.dumps(ZERO3))
    (folder / "data").mkdir()
    (folder / "data" / "train.jsonl").write_text('{"messages": []}\n')
    (folder / "config.yml").write_text(CONFIG)
    return folder


def test_launched_from_the_project_the_relative_paths_are_found(project: Path) -> None:
    code, problems = validate(project / "config.yml", cwd=project)
    assert (code, problems) == (0, [])


def test_launched_elsewhere_axolotl_would_not_find_them_and_the_message_says_where_they_are(
    project: Path, tmp_path: Path
) -> None:
    code, problems = validate(project / "config.yml", cwd=tmp_path)
    assert code == 1
    by_code = {problem["code"]: problem for problem in problems}
    deepspeed = by_code["deepspeed-unreadable"]
    assert (deepspeed["path"], deepspeed["line"], deepspeed["severity"]) == ("deepspeed", 13, "error")
    assert "next to the config" in deepspeed["message"]
    assert f"not in the launch directory {tmp_path}" in deepspeed["message"]
    assert f"--cwd {project}" in deepspeed["message"]
    data = by_code["path-beside-config"]
    assert (data["path"], data["severity"]) == ("datasets[0].path", "warning")
    assert "a hub dataset of that name" in data["message"]


def test_cwd_names_the_launch_directory(project: Path, tmp_path: Path) -> None:
    assert validate(project / "config.yml", "--cwd", str(project), cwd=tmp_path) == (0, [])


def test_a_config_next_to_its_files_in_another_folder_is_not_judged_by_that_folder(
    project: Path, tmp_path: Path
) -> None:
    """The other way round: the files exist in the launch directory, not next to the config."""
    elsewhere = tmp_path / "configs"
    elsewhere.mkdir()
    shutil.copy(project / "config.yml", elsewhere / "config.yml")
    assert validate(elsewhere / "config.yml", cwd=project) == (0, [])


def test_a_missing_axolotl_deepspeed_file_names_the_fetch_command(tmp_path: Path) -> None:
    (tmp_path / "config.yml").write_text(CONFIG)
    code, problems = validate(tmp_path / "config.yml", cwd=tmp_path)
    [deepspeed] = [problem for problem in problems if problem["code"] == "deepspeed-unreadable"]
    assert code == 1 and "axolotl fetch deepspeed_configs" in deepspeed["message"]


@pytest.mark.parametrize("launch_from_the_folder", [True, False])
def test_a_local_base_model_folder_is_read_from_its_config_json(
    tmp_path: Path, launch_from_the_folder: bool
) -> None:
    """A local Mixtral 8x7B folder (its published config.json) is recognised as Mixtral, so the 16-bit
    expert warning names its size; found from the launch directory, as transformers loads it."""
    models = tmp_path / "models" / "my-mixtral"
    models.mkdir(parents=True)
    shutil.copy(PUBLISHED / "Mixtral-8x7B-v0.1" / "config.json", models / "config.json")
    config = tmp_path / "config.yml"
    config.write_text(
        CONFIG.replace("mistralai/Mistral-7B-v0.3", "models/my-mixtral")
        .replace("deepspeed: deepspeed_configs/zero3_bf16.json\n", "")
        .replace("data/train.jsonl", "train.jsonl")
        + "adapter: qlora\nload_in_4bit: true\nlora_r: 8\nlora_alpha: 16\nlora_dropout: 0\n"
        + "lora_target_modules: [q_proj, v_proj, w1, w2, w3]\n"
    )
    options = () if launch_from_the_folder else ("--cwd", str(tmp_path))
    code, problems = validate(config, *options, cwd=tmp_path if launch_from_the_folder else models)
    [warning] = [problem for problem in problems if problem["code"] == "moe-experts-16bit"]
    assert code == 0 and "45.1 B parameters" in warning["message"]


@pytest.mark.parametrize("key", ["base_model", "tokenizer_config", "lora_model_dir"])
def test_a_local_folder_next_to_the_config_only_is_reported(project: Path, tmp_path: Path, key: str) -> None:
    (project / "local").mkdir()
    config = project / "config.yml"
    lines = [line for line in CONFIG.splitlines() if not line.startswith((f"{key}:", "deepspeed:"))]
    config.write_text("\n".join([*lines, f"{key}: local"]) + "\n")
    code, problems = validate(config, "--cwd", str(project), cwd=tmp_path)
    assert (code, problems) == (0, [])
    code, problems = validate(config, cwd=tmp_path)
    found = {problem["path"]: problem for problem in problems if problem["code"] == "path-beside-config"}
    assert found[key]["severity"] == "warning" and "of that name" in found[key]["message"]
