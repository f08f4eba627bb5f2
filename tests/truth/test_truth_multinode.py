"""`mft-recipes launch` bundles against the real components (docs/multinode.md, "Proof"):

- two "nodes" on one machine: the torchrun bundle's own node.sh, started with NODE_RANK 0 and 1 and
  MASTER_ADDR 127.0.0.1, runs the real `accelerate launch` with the bundle's accelerate config and torchrun's
  static rendezvous; one CPU rank per node over gloo trains the recipe's ZeRO-3 setup on a tiny Mixtral,
  its weights partitioned across both. The `axolotl` node.sh calls is a stand-in that does what axolotl's
  accelerate launcher does with the training module replaced by check 5's (tests/truth/zero3_ranks.py):
  axolotl's own training cannot run DeepSpeed on CPU (docs/multinode.md says why, measured);
- the Slurm bundle: `bash -n` and shellcheck, and a run under stand-ins for `srun` and `scontrol` (there is
  no Slurm here) that record their calls and start one task per node as srun does;
- the DeepSpeed bundle: DeepSpeed's own hostfile reader and launcher argument parser on what accelerate
  builds from the bundle, and DeepSpeed's config classes on the config's section for the world size;
- every bundle's accelerate config through accelerate's own config class, launch checks, and the check
  its DeepSpeed plugin makes against the trainer's own DeepSpeed config.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.refusals import mft
from tests.tiny_models import build_tiny_model
from tests.truth.cases import CPU_OVERRIDES, REPO, known_broken

pytestmark = [pytest.mark.axolotl, pytest.mark.usefixtures("axolotl_installed")]

BIN = Path(sys.executable).parent
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "disabled", "DO_NOT_TRACK": "1"}
CHAT = '{"messages": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}]}\n'


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def write_bundle(folder: Path, recipe: str, *args: str, dataset: str = "train.jsonl") -> Path:
    """`mft-recipes launch RECIPE dataset=DATASET ARGS -o bundle`, from `folder` (a local disk, so it is
    declared shared: the two nodes are one machine)."""
    (folder / "train.jsonl").write_text(CHAT * 4)
    cwd = Path.cwd()
    os.chdir(folder)
    try:
        result = mft("launch", recipe, f"dataset={dataset}", *args, "--shared", str(folder), "-o", "bundle")
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output
    return folder / "bundle"


def executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


# What axolotl's `train --launcher accelerate` runs (_launch_accelerate_training in axolotl/cli/utils/
# train.py: `accelerate launch OPTIONS -m axolotl.cli.train CONFIG`), the training module replaced.
AXOLOTL_STAND_IN = """#!/usr/bin/env bash
set -euo pipefail
[[ $1 == train && $3 == --launcher && $4 == accelerate && $5 == -- ]] || { echo "unexpected: $*" >&2; exit 64; }
config=$2
shift 5
exec accelerate launch "$@" -m tests.truth.zero3_ranks "$config" "$RESULT"
"""


def test_two_nodes_on_one_machine_train_the_recipes_zero3_setup(tmp_path: Path) -> None:
    """mixtral-8x22b-full's bundle where the installed stack loads Mixtral's experts right under ZeRO-3;
    where it does not (transformers 5.16.1, cases.KNOWN_BROKEN), the two nodes run mistral-7b-full's bundle
    on a dense tiny model: the launch is the same, and a run on corrupted experts proves nothing."""
    moe = known_broken("mixtral-8x22b-full") is None
    recipe = "mixtral-8x22b-full" if moe else "mistral-7b-full"
    base = build_tiny_model(tmp_path / "base", moe=moe)
    overrides = {**CPU_OVERRIDES, "micro_batch_size": 1, "base_model": str(base), "output_dir": "out"}
    port = free_port()
    bundle = write_bundle(
        tmp_path, recipe, *(f"{key}={value}" for key, value in overrides.items()),
        "--nodes", "2", "--gpus-per-node", "1", "--scheduler", "torchrun", "--port", str(port),
    )  # fmt: skip
    stand_ins = tmp_path / "bin"
    stand_ins.mkdir()
    executable(stand_ins / "axolotl", AXOLOTL_STAND_IN)
    result = tmp_path / "result.json"
    environment = {
        **os.environ,
        **OFFLINE,
        "PATH": f"{stand_ins}{os.pathsep}{BIN}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
        "MASTER_ADDR": "127.0.0.1",
        "RESULT": str(result),
    }
    nodes = [
        subprocess.Popen(
            ["bash", str(bundle / "node.sh")],
            env={**environment, "NODE_RANK": str(rank)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in (0, 1)
    ]
    outputs = [node.communicate(timeout=900)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], "\n".join(output[-4000:] for output in outputs)
    trained = json.loads(result.read_text())
    assert trained["world_size"] == 2 and trained["zero_stage"] == 3
    assert trained["mismatched"] == [], "ZeRO-3 loaded these weights other than the checkpoint's"
    assert trained["losses"][-1] < trained["losses"][0]
    ranks = trained["ranks"]
    assert sorted((rank["rank"], rank["node"]) for rank in ranks) == [(0, 0), (1, 1)], "one rank on each node"
    total, held = ranks[0]["total_numel"], [rank["partition_numel"] for rank in ranks]
    # Each rank holds its half of every partitioned weight (a half rounded up: DeepSpeed pads to the world).
    assert held[0] == held[1] and 0 <= 2 * held[0] - total <= ranks[0]["partitioned_params"]
    assert any(".mlp.experts." in name for name in trained["trainable"]) is moe


SRUN_STAND_IN = """#!{python}
# Stand-in for Slurm's srun: records its options and command, then runs the command once per task the
# options ask for (one per node here), with the task's SLURM_NODEID and SLURM_PROCID, as srun does.
import json, os, subprocess, sys
args = sys.argv[1:]
split = next(index for index, word in enumerate(args) if not word.startswith("--"))
options, command = args[:split], args[split:]
with open(os.environ["CALLS"], "a") as calls:
    calls.write(json.dumps({{"program": "srun", "options": options, "command": command}}) + "\\n")
tasks = int(next(word.split("=")[1] for word in options if word.startswith("--ntasks=")))
for task in range(tasks):
    env = dict(os.environ, SLURM_NODEID=str(task), SLURM_PROCID=str(task))
    subprocess.run(command, env=env, check=True)
"""
SCONTROL_STAND_IN = """#!{python}
# Stand-in for `scontrol show hostnames LIST`: records the call, prints the nodes one per line.
import json, os, sys
with open(os.environ["CALLS"], "a") as calls:
    calls.write(json.dumps({{"program": "scontrol", "args": sys.argv[1:]}}) + "\\n")
print("\\n".join(os.environ["STAND_IN_NODES"].split(",")))
"""
RECORDER = """#!{python}
# Stand-in for axolotl: records the command line and the rendezvous variables of the task.
import json, os, sys
with open(os.environ["CALLS"], "a") as calls:
    record = {{"program": "axolotl", "args": sys.argv[1:], "node": os.environ.get("SLURM_NODEID")}}
    calls.write(json.dumps(record) + "\\n")
"""


def slurm_stand_ins(folder: Path) -> Path:
    folder.mkdir()
    for name, text in (("srun", SRUN_STAND_IN), ("scontrol", SCONTROL_STAND_IN), ("axolotl", RECORDER)):
        executable(folder / name, text.format(python=sys.executable))
    return folder


def test_the_slurm_bundle_passes_shellcheck_and_starts_one_task_per_node(tmp_path: Path) -> None:
    port = free_port()
    bundle = write_bundle(
        tmp_path, "mistral-7b-full", "--nodes", "3", "--scheduler", "slurm", "--port", str(port)
    )
    scripts = [str(bundle / "train.sbatch"), str(bundle / "node.sh")]
    for script in scripts:
        assert subprocess.run(["bash", "-n", script], capture_output=True).returncode == 0
    checked = subprocess.run(
        [str(BIN / "shellcheck"), "--shell=bash", *scripts], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout

    calls = tmp_path / "calls.jsonl"
    environment = {
        **os.environ,
        "PATH": f"{slurm_stand_ins(tmp_path / 'bin')}{os.pathsep}{os.environ['PATH']}",
        "CALLS": str(calls),
        "SLURM_JOB_NODELIST": "gpu-[a-c]",
        "STAND_IN_NODES": "gpu-a,gpu-b,gpu-c",
        "SLURM_CPUS_ON_NODE": "64",
    }
    run = subprocess.run(
        ["bash", str(bundle / "train.sbatch")], env=environment, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    recorded = [json.loads(line) for line in calls.read_text().splitlines()]
    assert recorded[0] == {"program": "scontrol", "args": ["show", "hostnames", "gpu-[a-c]"]}
    config, accelerate = str(bundle / "config.yml"), str(bundle / "accelerate.yaml")
    # The data, tokenized once on the first node, before any training task starts.
    assert recorded[1]["options"] == ["--nodes=1", "--ntasks=1", "--nodelist=gpu-a"]
    assert recorded[2] == {"program": "axolotl", "args": ["preprocess", config], "node": "0"}
    # Then one task per node, with the node's GPUs and CPUs.
    assert recorded[3]["options"] == [
        "--nodes=3", "--ntasks=3", "--ntasks-per-node=1", "--gpus-per-node=8", "--cpus-per-task=64",
        "--kill-on-bad-exit=1",
    ]  # fmt: skip
    tasks = recorded[4:]
    assert len(tasks) == 3
    for node, task in enumerate(tasks):
        assert task["args"] == [
            "train", config, "--launcher", "accelerate", "--", "--config_file", accelerate,
            "--machine_rank", str(node), "--main_process_ip", "gpu-a", "--main_process_port", str(port),
        ]  # fmt: skip

    # An allocation of another size stops before anything starts.
    calls.unlink()
    short = {**environment, "SLURM_JOB_NODELIST": "gpu-[a-b]", "STAND_IN_NODES": "gpu-a,gpu-b"}
    run = subprocess.run(["bash", str(bundle / "train.sbatch")], env=short, capture_output=True, text=True)
    assert run.returncode == 1 and "the allocation has 2 nodes, the run is written for 3" in run.stderr
    assert [json.loads(line)["program"] for line in calls.read_text().splitlines()] == ["scontrol"]


def accelerate_launch(options: list[str], config: str, module: str = "axolotl.cli.train") -> Any:
    """`accelerate launch OPTIONS -m MODULE CONFIG` as accelerate's own code reads it, up to the command and
    environment it hands on (launch_command in accelerate/commands/launch.py, to `deepspeed_launcher`'s
    prepare_deepspeed_cmd_env)."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_deepspeed_cmd_env

    args = launch_command_parser().parse_args([*options, "-m", module, config])
    args, defaults, precision_from_config = _validate_launch_command(args)
    assert args.use_deepspeed
    fields = list(defaults.deepspeed_config) + (["mixed_precision"] if precision_from_config else [])
    args.deepspeed_fields_from_accelerate_config = ",".join(fields)
    return prepare_deepspeed_cmd_env(args)


def resolved_section(config: Path, world: int) -> dict[str, Any]:
    """The config's DeepSpeed section with the HF Trainer's "auto" values filled for `world` ranks."""
    from mft_recipes_axolotl import deep
    from mft_recipes_axolotl.deepspeed_check import resolved_deepspeed

    from tests.truth.cases import published_config

    document = yaml.safe_load(config.read_text())
    axolotl = deep.axolotl_config(document, published_config("Mistral-7B-v0.3"), gpus=world, gpu="h100-80gb")
    return resolved_deepspeed(axolotl, world, deep.meta_model_config(axolotl))


def test_deepspeeds_own_launcher_and_config_classes_accept_the_hostfile_bundle(tmp_path: Path) -> None:
    from deepspeed.launcher.runner import fetch_hostfile, parse_args, parse_inclusion_exclusion
    from mft_recipes_axolotl.deepspeed_check import deepspeed_problems

    port = free_port()
    bundle = write_bundle(
        tmp_path, "mistral-7b-full", "--nodes", "2", "--scheduler", "deepspeed", "--hosts", "gpu01,gpu02",
        "--port", str(port),
    )  # fmt: skip
    pool = fetch_hostfile(str(bundle / "hostfile"))
    assert dict(pool) == {"gpu01": 8, "gpu02": 8}
    launch_line = (bundle / "launch.sh").read_text().splitlines()[-1]
    options = shlex.split(launch_line)[7:]  # after `exec axolotl train CONFIG --launcher accelerate --`
    command, _ = accelerate_launch(options, str(bundle / "config.yml"))
    assert command[0] == "deepspeed"
    runner = parse_args(command[1:])
    assert (runner.hostfile, runner.launcher, runner.master_addr, runner.master_port) == (
        str(bundle / "hostfile"), "pdsh", "gpu01", port,
    )  # fmt: skip
    assert runner.module and runner.user_script == "axolotl.cli.train"
    assert runner.user_args == [str(bundle / "config.yml")]
    active = parse_inclusion_exclusion(fetch_hostfile(runner.hostfile), runner.include, runner.exclude)
    slots = {host: len(gpus[: runner.num_gpus]) for host, gpus in active.items()}
    assert slots == {"gpu01": 8, "gpu02": 8}
    world = sum(slots.values())
    section = resolved_section(bundle / "config.yml", world)
    assert deepspeed_problems(section, world) == []
    assert section["train_batch_size"] == 2 * 4 * 16  # micro batch × accumulation × the 16 ranks


@pytest.mark.parametrize("scheduler", ["slurm", "torchrun", "deepspeed"])
def test_accelerates_own_classes_accept_the_accelerate_config(tmp_path: Path, scheduler: str) -> None:
    from accelerate.commands.config.config_args import ClusterConfig
    from accelerate.utils import DeepSpeedPlugin, patch_environment

    port = free_port()
    hosts = ["--hosts", "gpu01,gpu02"] if scheduler == "deepspeed" else []
    bundle = write_bundle(
        tmp_path, "mistral-7b-full", "--nodes", "2", "--scheduler", scheduler, "--port", str(port), *hosts
    )
    accelerate = bundle / "accelerate.yaml"
    loaded = ClusterConfig.from_yaml_file(str(accelerate))  # refuses a key accelerate does not know
    assert (loaded.num_machines, loaded.num_processes, loaded.distributed_type.value) == (2, 16, "DEEPSPEED")
    options = ["--config_file", str(accelerate)]
    if scheduler != "deepspeed":  # what node.sh adds, for node 0
        options += ["--machine_rank", "0", "--main_process_ip", "127.0.0.1", "--main_process_port", str(port)]
    _, environment = accelerate_launch(options, str(bundle / "config.yml"))
    section = resolved_section(bundle / "config.yml", 16)
    with patch_environment(**environment):
        DeepSpeedPlugin(hf_ds_config=section)  # the check that refuses a file setting axolotl's keys too

    # The check can fail: the same file with a precision in it is refused at the first step of training.
    accelerate.write_text(accelerate.read_text() + "mixed_precision: bf16\n")
    _, environment = accelerate_launch(options, str(bundle / "config.yml"))
    with patch_environment(**environment), pytest.raises(ValueError, match="will be ignored"):
        DeepSpeedPlugin(hf_ds_config=section)


def test_accelerates_own_classes_take_the_trl_bundles_deepspeed_from_its_config(tmp_path: Path) -> None:
    """TRL takes DeepSpeed from the accelerate config: the TRL bundle's file loads in accelerate's
    ClusterConfig, and the DeepSpeed plugin accelerate's launcher hands every rank (through the
    environment) is the recipe's ZeRO-3 with its precision. TRL itself is not in this environment (the trl
    tier has it); accelerate's side is what the bundle adds."""
    from accelerate.commands.config.config_args import ClusterConfig
    from accelerate.utils import DeepSpeedPlugin, patch_environment

    (tmp_path / "train.tokens.jsonl").write_text('{"input_ids": [1, 3, 2], "assistant_masks": [0, 1, 1]}\n')
    port = free_port()
    bundle = write_bundle(
        tmp_path, "mistral-7b-full", "--target", "trl", "--nodes", "2", "--scheduler", "slurm",
        "--port", str(port), dataset="train.tokens.jsonl",
    )  # fmt: skip
    accelerate = bundle / "accelerate.yaml"
    loaded = ClusterConfig.from_yaml_file(str(accelerate))
    assert (loaded.num_machines, loaded.num_processes, loaded.distributed_type.value) == (2, 16, "DEEPSPEED")
    options = ["--config_file", str(accelerate), "--machine_rank", "1", "--main_process_ip", "127.0.0.1"]
    _, environment = accelerate_launch(
        [*options, "--main_process_port", str(port)], str(bundle / "config.yml"), module="trl.scripts.sft"
    )
    with patch_environment(**environment):
        plugin = DeepSpeedPlugin()
    assert "deepspeed" not in yaml.safe_load((bundle / "config.yml").read_text()), "only accelerate's"
    assert plugin.zero_stage == 3 and plugin.deepspeed_config["zero_optimization"]["stage"] == 3
    assert environment["ACCELERATE_MIXED_PRECISION"] == "bf16"
