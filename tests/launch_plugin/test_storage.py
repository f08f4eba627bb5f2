"""Where a path is: the mount table read as the kernel writes it, the deepest mount holding the path, and
what each kind of filesystem means for the nodes of a cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
from mft_recipes_launch import storage
from mft_recipes_launch.storage import place, read_mounts

from .conftest import mountinfo


def test_this_machines_own_mount_table_is_read() -> None:
    if not storage.MOUNTINFO.is_file():
        pytest.skip("no /proc/self/mountinfo: not Linux")
    mounts = read_mounts()
    root = place(Path("/"), mounts)
    assert root.mount is not None and root.mount.point == Path("/")


def test_escaped_mount_points_the_deepest_mount_and_the_last_of_a_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = tmp_path / "mountinfo"
    table.write_text(
        mountinfo(("/", "ext4", "/dev/sda1"), ("/mnt/team\\040data", "lustre", "mds@tcp:/fs"))
        + mountinfo(("/mnt/team\\040data/scratch", "xfs", "/dev/nvme0n1"), ("/srv", "tmpfs", "tmpfs"))
        + mountinfo(("/srv", "nfs", "server:/srv"))  # mounted over the tmpfs: it hides it
    )
    monkeypatch.setattr(storage, "MOUNTINFO", table)
    mounts = read_mounts()
    assert Path("/mnt/team data") in [mount.point for mount in mounts]
    assert place(Path("/mnt/team data/runs/a"), mounts).verdict == "shared"
    assert place(Path("/mnt/team data/scratch/a"), mounts).verdict == "local"
    assert place(Path("/srv/x"), mounts).verdict == "shared"
    assert place(Path("/home/me"), mounts).describe() == "ext4 on /dev/sda1, mounted at /"


@pytest.mark.parametrize(
    ("fstype", "verdict"),
    [("nfs4", "shared"), ("lustre", "shared"), ("gpfs", "shared"), ("fuse.gcsfuse", "shared"),
     ("ext4", "local"), ("tmpfs", "local"), ("overlay", "local"), ("fuse.mystery", "unknown")],
)  # fmt: skip
def test_each_kind_of_filesystem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fstype: str, verdict: str
) -> None:
    table = tmp_path / "mountinfo"
    table.write_text(mountinfo(("/data", fstype, "somewhere")))
    monkeypatch.setattr(storage, "MOUNTINFO", table)
    assert place(Path("/data/run"), read_mounts()).verdict == verdict


def test_without_a_mount_table_nothing_is_known_but_what_shared_declares(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage, "MOUNTINFO", tmp_path / "absent")
    assert read_mounts() == []
    assert place(Path("/data/run"), []).verdict == "unknown"
    assert place(Path("/data/run"), [], (Path("/data"),)).verdict == "shared"
    assert place(Path("/database"), [], (Path("/data"),)).verdict == "unknown", "a folder, not a prefix"
