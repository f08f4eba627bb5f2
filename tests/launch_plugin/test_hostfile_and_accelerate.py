"""DeepSpeed hostfiles read as DeepSpeed's launcher reads them (the axolotl tier compares with DeepSpeed's
own parser), and accelerate configs as `validate` judges them: accelerate's keys only, and a world size
the file agrees on."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from mft_recipes_launch.hostfile import HostfileError, format_hostfile, parse_hostfile

from tests.refusals import mft


def test_hostfiles_as_deepspeed_reads_them() -> None:
    text = format_hostfile(("gpu01", "gpu02"), 8)
    assert text == "gpu01 slots=8\ngpu02 slots=8\n"
    assert parse_hostfile("# the cluster\n\n" + text) == {"gpu01": 8, "gpu02": 8}
    assert parse_hostfile("gpu01 slots=4 max_slots=4\n") == {"gpu01": 4}, "DeepSpeed reads the line's start"


@pytest.mark.parametrize(
    ("text", "message"),
    [("gpu01\n", "line 1: expected `HOST slots=N`"), ("a slots=8\na slots=8\n", "line 2: a is named twice"),
     ("# nothing\n", "no `HOST slots=N` line")],
)  # fmt: skip
def test_hostfiles_deepspeed_refuses(text: str, message: str) -> None:
    with pytest.raises(HostfileError, match=message):
        parse_hostfile(text)


ACCELERATE = {
    "compute_environment": "LOCAL_MACHINE",
    "distributed_type": "DEEPSPEED",
    "deepspeed_config": {"deepspeed_multinode_launcher": "standard"},
    "num_machines": 2,
    "num_processes": 16,
}


def validate(tmp_path: Path, config: dict, *options: str) -> tuple[int, str]:
    path = tmp_path / "accelerate.yaml"
    path.write_text(yaml.safe_dump(config))
    result = mft("validate", str(path), *options)
    return result.exit_code, result.stdout + result.stderr


def test_an_accelerate_config_is_told_apart_and_validated(tmp_path: Path) -> None:
    code, output = validate(tmp_path, ACCELERATE, "--gpus", "16")
    assert code == 0 and "ok (accelerate)" in output, output


@pytest.mark.parametrize(
    ("change", "options", "needle"),
    [
        (
            {"num_processes": 12, "num_machines": 5},
            (),
            "num_processes 12 is not a multiple of num_machines 5",
        ),
        ({}, ("--gpus", "8"), "num_processes 16 is not the 8 GPUs the run has"),
        ({"deepspeed_config": {"deepspeed_multinode_launcher": "pdsh"}}, (), "give deepspeed_hostfile"),
        ({"deepspeed_config": {"zero_stage": 3, "zero3_init": True}}, (), "zero3_init"),
        ({"num_machine": 2}, (), "num_machine"),
    ],
)
def test_what_accelerate_would_do_otherwise_than_written_is_refused(
    tmp_path: Path, change: dict, options: tuple[str, ...], needle: str
) -> None:
    code, output = validate(tmp_path, {**ACCELERATE, **change}, *options)
    assert code == 1 and needle in output, output
