"""`mft-recipes launch --target trl`: the same bundle around TRL's part, where TRL takes DeepSpeed from the
accelerate config (the recipe's ZeRO section, as `render --target trl` writes it), each node runs
`accelerate launch -m trl.scripts.sft`, and there is nothing to prepare once (TRL tokenizes in the run).
The trl tier runs that accelerate launch on two CPU ranks (tests/trl_tier/test_trl_zero3.py)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from tests.refusals import mft

from .conftest import read_json

TOKENS = '{"input_ids": [1, 3, 4, 2], "assistant_masks": [0, 0, 1, 1]}\n'


@pytest.fixture
def tokens(shared: Path) -> Path:
    path = shared / "train.tokens.jsonl"
    path.write_text(TOKENS * 4)
    return path


def launched(scheduler: str, *args: str) -> Path:
    result = mft(
        "launch", "mistral-7b-full", "dataset=train.tokens.jsonl", "--target", "trl", "--nodes", "2",
        "--scheduler", scheduler, "-o", "run", *args,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return Path("run").resolve()


def test_the_trl_bundle_validates_as_trl_and_accelerate(tokens: Path) -> None:
    folder = launched("slurm")
    assert read_json(folder / "bundle.json")["target"] == "trl"
    result = mft(
        "validate", "--gpus", "16", "--json", str(folder / "config.yml"), str(folder / "accelerate.yaml")
    )
    assert result.exit_code == 0, result.output
    assert [entry["kind"] for entry in yaml.safe_load(result.stdout)["files"]] == ["trl", "accelerate"]


def test_deepspeed_comes_from_the_accelerate_config_render_writes(tokens: Path, tmp_path: Path) -> None:
    folder = launched("slurm")
    bundle = yaml.safe_load((folder / "accelerate.yaml").read_text())
    rendered = mft(
        "render",
        "mistral-7b-full",
        "dataset=train.tokens.jsonl",
        "--target",
        "trl",
        "-o",
        str(tmp_path / "r.yaml"),
    )
    assert rendered.exit_code == 0, rendered.output
    own = yaml.safe_load((tmp_path / "r.accelerate.yaml").read_text())
    ds = dict(bundle["deepspeed_config"])
    assert ds.pop("deepspeed_multinode_launcher") == "standard"
    assert ds == own["deepspeed_config"]
    assert bundle["mixed_precision"] == own["mixed_precision"]
    assert (bundle["num_machines"], bundle["num_processes"]) == (2, 16)


def test_each_node_runs_trl_sft_through_accelerate_and_nothing_is_prepared(tokens: Path) -> None:
    folder = launched("slurm")
    line = next(line for line in (folder / "node.sh").read_text().splitlines() if line.startswith("exec "))
    words = shlex.split(line)
    assert words[:3] == ["exec", "accelerate", "launch"]
    assert words[-4:] == ["-m", "trl.scripts.sft", "--config", str(folder / "config.yml")]
    assert dict(zip(words[3:-4:2], words[4:-4:2], strict=True))["--config_file"] == str(
        folder / "accelerate.yaml"
    )
    assert "preprocess" not in (folder / "train.sbatch").read_text()
    assert "--target trl" in (folder / "README.md").read_text(), "the plan line plans the TRL run"


def test_chat_data_is_refused_as_trl_refuses_it(shared: Path) -> None:
    result = mft(
        "launch", "mistral-7b-full", "dataset=train.jsonl", "--target", "trl", "--nodes", "2",
        "--scheduler", "torchrun", "-o", "run",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "trl-data-not-tokenized" in result.stderr and "nothing written" in result.stderr
    assert not (shared / "run").exists()
