"""`mft-recipes launch`: each scheduler's bundle, every file of it validated as what it is, written whole
or not at all, and the refusals of what breaks on several nodes (paths only one node has, the tokenized
data prepared per node, a world size the files do not agree on).

The axolotl tier runs the bundles against the real components: shellcheck, stub `srun`/`scontrol`,
DeepSpeed's hostfile parser and config classes, accelerate's own config classes, and two nodes training
on one machine (tests/truth/test_truth_multinode.py).
"""

from __future__ import annotations

import os
import shlex
import stat
from pathlib import Path

import pytest
import yaml
from mft_recipes_launch import bundle as bundle_module

from mft_recipes.schemas import check_against_schema
from tests.refusals import mft

from .conftest import read_json

FILES = {
    "slurm": {"config.yml", "accelerate.yaml", "train.sbatch", "node.sh", "README.md", "bundle.json"},
    "torchrun": {"config.yml", "accelerate.yaml", "node.sh", "README.md", "bundle.json"},
    "deepspeed": {"config.yml", "accelerate.yaml", "hostfile", "launch.sh", "README.md", "bundle.json"},
}
HOSTS = {"deepspeed": ["--hosts", "gpu01,gpu02"]}


def launch(*args: str) -> tuple[int, str, str]:
    result = mft("launch", *args)
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.stdout, result.stderr


def launched(scheduler: str, *args: str, recipe: str = "mistral-7b-full") -> Path:
    code, _, stderr = launch(
        recipe, "dataset=train.jsonl", "--nodes", "2", "--scheduler", scheduler, "-o", "run",
        *HOSTS.get(scheduler, []), *args,
    )  # fmt: skip
    assert code == 0, stderr
    return Path("run").resolve()


@pytest.mark.parametrize("scheduler", sorted(FILES))
def test_each_scheduler_writes_its_files_each_valid_as_what_it_is(shared: Path, scheduler: str) -> None:
    folder = launched(scheduler)
    assert {path.name for path in folder.iterdir()} == FILES[scheduler]
    manifest = read_json(folder / "bundle.json")
    assert check_against_schema(manifest, "launch-bundle") == []
    assert (manifest["nodes"], manifest["gpus_per_node"], manifest["world_size"]) == (2, 8, 16)
    assert set(manifest["files"]) == FILES[scheduler]
    # The training config and the accelerate config pass `validate` as their kinds, for 16 GPUs.
    result = mft(
        "validate", "--gpus", "16", "--json", str(folder / "config.yml"), str(folder / "accelerate.yaml")
    )
    assert result.exit_code == 0, result.output
    kinds = [entry["kind"] for entry in yaml.safe_load(result.stdout)["files"]]
    assert kinds == ["axolotl", "accelerate"]
    for name in manifest["files"]:
        mode = stat.S_IMODE((folder / name).stat().st_mode)
        executable = name.endswith((".sh", ".sbatch"))
        assert bool(mode & stat.S_IXUSR) is executable, name
        assert mode & stat.S_IROTH, f"{name}: other users (a trainer in a container) read it"


def test_json_is_what_bundle_json_holds(shared: Path) -> None:
    code, stdout, stderr = launch(
        "mistral-7b-full",
        "dataset=train.jsonl",
        "--nodes",
        "2",
        "--scheduler",
        "slurm",
        "-o",
        "run",
        "--json",
    )
    assert code == 0, stderr
    assert yaml.safe_load(stdout) == read_json(shared / "run" / "bundle.json")


@pytest.mark.parametrize(("scheduler", "launcher"), [("slurm", "standard"), ("deepspeed", "pdsh")])
def test_the_accelerate_config_has_the_cluster_and_leaves_deepspeed_to_axolotl(
    shared: Path, scheduler: str, launcher: str
) -> None:
    config = yaml.safe_load((launched(scheduler) / "accelerate.yaml").read_text())
    assert config["distributed_type"] == "DEEPSPEED"
    assert (config["num_machines"], config["num_processes"], config["rdzv_backend"]) == (2, 16, "static")
    assert config["deepspeed_config"]["deepspeed_multinode_launcher"] == launcher
    # axolotl gives DeepSpeed its own config: accelerate refuses a file that sets these as well.
    assert "mixed_precision" not in config
    assert not {"zero_stage", "gradient_accumulation_steps", "gradient_clipping"} & set(
        config["deepspeed_config"]
    )


def test_each_node_runs_axolotl_train_through_accelerate_with_its_rank(shared: Path) -> None:
    folder = launched("torchrun")
    line = next(line for line in (folder / "node.sh").read_text().splitlines() if line.startswith("exec "))
    words = shlex.split(line)
    assert words[:7] == [
        "exec",
        "axolotl",
        "train",
        str(folder / "config.yml"),
        "--launcher",
        "accelerate",
        "--",
    ]
    options = dict(zip(words[7::2], words[8::2], strict=True))
    assert options == {
        "--config_file": str(folder / "accelerate.yaml"),
        "--machine_rank": "$NODE_RANK",
        "--main_process_ip": "$MASTER_ADDR",
        "--main_process_port": "$MASTER_PORT",
    }
    readme = (folder / "README.md").read_text()
    assert f"cd {shared} && axolotl preprocess {folder / 'config.yml'}" in readme, "the data prepared once"


def test_the_slurm_script_asks_for_the_recipes_nodes(shared: Path) -> None:
    code, _, stderr = launch("mixtral-8x22b-full", "dataset=train.jsonl", "--scheduler", "slurm", "-o", "run")
    assert code == 0, stderr
    sbatch = (shared / "run" / "train.sbatch").read_text()
    assert "#SBATCH --nodes=6\n" in sbatch and "#SBATCH --gpus-per-node=8\n" in sbatch
    assert yaml.safe_load((shared / "run" / "accelerate.yaml").read_text())["num_processes"] == 48


def test_setup_lines_and_sbatch_options_go_where_they_belong(shared: Path) -> None:
    folder = launched("slurm", "--setup", "source /opt/venv/bin/activate", "--sbatch-option=--partition=gpu")
    sbatch, node = (folder / "train.sbatch").read_text(), (folder / "node.sh").read_text()
    assert "#SBATCH --partition=gpu\n" in sbatch
    for script in (sbatch, node):
        assert "set -euo pipefail\nsource /opt/venv/bin/activate\ncd " in script


def test_mixtral_8x22b_lora_launches_on_two_nodes_of_eight_a100_40gb(shared: Path) -> None:
    code, _, stderr = launch(
        "mixtral-8x22b", "dataset=train.jsonl", "--gpu", "a100-40gb", "--nodes", "2", "--gpus-per-node", "8",
        "--scheduler", "torchrun", "-o", "run",
    )  # fmt: skip
    assert code == 0, stderr
    assert "warning" not in stderr
    plan = read_json(shared / "run" / "bundle.json")["plan"]
    assert plan["fits"] is True and plan["memory_per_gpu_gib"] < 40
    assert plan["communication"]["bound"] == "communication", "the README says what the plan says"
    assert "communication-bound" in (shared / "run" / "README.md").read_text()


def test_a_plan_that_does_not_fit_is_a_warning_in_the_readme(shared: Path) -> None:
    code, _, stderr = launch(
        "mixtral-8x22b-full", "dataset=train.jsonl", "--nodes", "4", "--scheduler", "slurm", "-o", "run"
    )
    assert code == 0
    assert "mft-recipes: warning: plan: needs" in stderr and "6 nodes of 8 would fit" in stderr
    assert "6 nodes of 8 would fit" in (shared / "run" / "README.md").read_text()


def test_paths_on_one_machines_disk_are_refused_and_nothing_is_written(shared: Path, tmp_path: Path) -> None:
    local = tmp_path / "local"
    code, _, stderr = launch(
        "mistral-7b-full", "dataset=train.jsonl", f"output_dir={local}/out", f"dataset_prepared_path={local}/prep",
        "--nodes", "2", "--scheduler", "slurm", "-o", "run",
    )  # fmt: skip
    assert code == 1
    assert (
        f"output_dir: {local}/out is on this machine's own disk (ext4 on /dev/sda1, mounted at /)" in stderr
    )
    assert f"dataset_prepared_path: {local}/prep is on this machine's own disk" in stderr
    assert "every node prepares the data again, each on its own" in stderr
    assert "(2 problems); nothing written" in stderr and "--shared FOLDER" in stderr
    assert not (shared / "run").exists() and not local.exists()


def test_a_bundle_or_launch_folder_of_one_machine_is_refused(shared: Path, tmp_path: Path) -> None:
    code, _, stderr = launch(
        "mistral-7b-full", f"dataset={shared}/train.jsonl", "--nodes", "2", "--scheduler", "slurm",
        "-o", str(tmp_path / "run"),
    )  # fmt: skip
    assert code == 1
    assert f"bundle (-o): {tmp_path / 'run'} is on this machine's own disk" in stderr
    os.chdir(tmp_path)
    code, _, stderr = launch(
        "mistral-7b-full", f"dataset={shared}/train.jsonl", "--nodes", "2", "--scheduler", "slurm",
        "-o", str(shared / "run"),
    )  # fmt: skip
    assert code == 1
    assert f"launch folder: {tmp_path} is on this machine's own disk" in stderr
    assert "output_dir: ./outputs/mistral-7b-full" in stderr, "relative paths resolve from the launch folder"


def test_shared_declares_a_folder_every_node_mounts(shared: Path, tmp_path: Path) -> None:
    local = tmp_path / "scratch"
    folder = launched("slurm", f"output_dir={local}/out", "--shared", str(local))
    entry = next(
        entry for entry in read_json(folder / "bundle.json")["shared_paths"] if entry["key"] == "output_dir"
    )
    assert (entry["shared"], entry["filesystem"], entry["declared_by"]) == ("shared", "ext4", str(local))


def test_a_filesystem_of_unknown_kind_is_a_warning(shared: Path, tmp_path: Path) -> None:
    from mft_recipes_launch import storage

    from .conftest import mountinfo

    storage.MOUNTINFO.write_text(mountinfo(("/", "ext4", "/dev/sda1"), (shared, "fuse.mystery", "mystery")))
    code, _, stderr = launch(
        "mistral-7b-full", "dataset=train.jsonl", "--nodes", "2", "--scheduler", "slurm", "-o", "run"
    )
    assert code == 0
    assert (
        "mft-recipes: warning: output_dir: cannot tell whether every node sees ./outputs/mistral-7b-full"
        in stderr
    )


def test_missing_data_is_refused_and_a_hub_dataset_is_not_a_path(shared: Path) -> None:
    code, _, stderr = launch(
        "mistral-7b-full", "dataset=missing.jsonl", "--nodes", "2", "--scheduler", "slurm", "-o", "run"
    )
    assert code == 1
    assert f"datasets[0].path: missing.jsonl ({shared / 'missing.jsonl'}) does not exist" in stderr
    folder = launched("slurm", "dataset=mistralai/some-dataset")
    keys = [entry["key"] for entry in read_json(folder / "bundle.json")["shared_paths"]]
    assert keys == ["bundle (-o)", "launch folder", "output_dir", "dataset_prepared_path"]


def test_a_bundle_is_replaced_whole_and_another_folder_is_not_touched(shared: Path) -> None:
    folder = launched("slurm")
    launched("torchrun")
    assert not (folder / "train.sbatch").exists(), "the old bundle is gone, not merged"
    assert read_json(folder / "bundle.json")["scheduler"] == "torchrun"
    other = shared / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    code, _, stderr = launch(
        "mistral-7b-full", "dataset=train.jsonl", "--nodes", "2", "--scheduler", "slurm", "-o", "mine"
    )
    assert code == 2 and "it holds other files" in stderr
    assert [path.name for path in other.iterdir()] == ["notes.txt"]


def test_a_write_that_fails_leaves_no_folder_and_no_debris(
    shared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_chmod = Path.chmod
    calls = []

    def failing_chmod(self: Path, mode: int) -> None:
        calls.append(self)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real_chmod(self, mode)

    monkeypatch.setattr(Path, "chmod", failing_chmod)
    code, _, stderr = launch(
        "mistral-7b-full", "dataset=train.jsonl", "--nodes", "2", "--scheduler", "slurm", "-o", "run"
    )
    assert code == 2 and f"cannot write a file in {shared}" in stderr
    assert sorted(path.name for path in shared.iterdir()) == ["train.jsonl"]


def test_a_target_without_launch_support_is_a_usage_error(shared: Path) -> None:
    code, _, stderr = launch(
        "platform-mistral-7b", "training_file=file-1", "--scheduler", "slurm", "-o", "run"
    )
    assert code == 2 and "nothing to launch" in stderr


def test_deepspeeds_launcher_needs_a_deepspeed_recipe(shared: Path) -> None:
    code, _, stderr = launch(
        "mistral-7b-lora", "dataset=train.jsonl", "--nodes", "2", "--scheduler", "deepspeed", "--hosts", "a,b",
        "-o", "run",
    )  # fmt: skip
    assert code == 2 and "renders no DeepSpeed section" in stderr
    # The same recipe runs as DDP under the per-node launchers.
    folder = launched("torchrun", recipe="mistral-7b-lora")
    assert yaml.safe_load((folder / "accelerate.yaml").read_text())["distributed_type"] == "MULTI_GPU"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--scheduler", "deepspeed"], "name the 2 hosts with --hosts"),
        (["--scheduler", "deepspeed", "--hosts", "a,b,c"], "--hosts names 3 hosts and --nodes is 2"),
        (["--scheduler", "deepspeed", "--hosts", "a,a"], "names a host twice"),
        (["--scheduler", "deepspeed", "--hosts", "a,b c"], "'b c' is not a host name"),
        (["--scheduler", "slurm", "--hosts", "a,b"], "--hosts names a DeepSpeed hostfile's hosts"),
        (
            ["--scheduler", "slurm", "--gpus-per-node", "8", "--gpus", "12"],
            "--gpus 12 is not 2 nodes × 8 GPUs per node",
        ),
    ],
)
def test_an_inconsistent_world_size_is_a_usage_error(shared: Path, args: list[str], needle: str) -> None:
    code, _, stderr = launch("mistral-7b-full", "dataset=train.jsonl", "--nodes", "2", "-o", "run", *args)
    assert code == 2 and needle in stderr, stderr
    assert not (shared / "run").exists()


def test_the_bundle_is_checked_before_it_is_written(monkeypatch: pytest.MonkeyPatch, shared: Path) -> None:
    """A script bash cannot parse (a bug of ours, made here) is refused with its name; nothing is written."""
    from mft_recipes_launch import schedulers

    real = schedulers.Run.start
    monkeypatch.setattr(schedulers.Run, "start", lambda self: real(self) + "if then\n")
    code, _, stderr = launch(
        "mistral-7b-full", "dataset=train.jsonl", "--nodes", "2", "--scheduler", "slurm", "-o", "run"
    )
    assert (
        code == 1
        and "train.sbatch: bash cannot parse it" in stderr
        and "node.sh: bash cannot parse it" in stderr
    )
    assert not (shared / "run").exists()
    assert bundle_module.MANIFEST == "bundle.json"
