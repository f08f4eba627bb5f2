"""A cluster's login node, as `mft-recipes launch` sees it: a folder on NFS holding the data, the run
started from it, everything else on a local disk.

The mount table is a stand-in (this machine mounts no NFS): `/proc/self/mountinfo` lines written by the
test, read by the plugin's own parser exactly as it reads the real one (tests/launch_plugin/
test_storage.py reads the real one too).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mft_recipes_launch import storage

CHAT = '{"messages": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}]}\n'


def mountinfo(*mounts: tuple[Path | str, str, str]) -> str:
    """mountinfo lines for (mount point, filesystem type, source), numbered as the kernel numbers them."""
    return "".join(
        f"{20 + index} 1 0:{40 + index} / {point} rw,relatime shared:{index} - {fstype} {source} rw\n"
        for index, (point, fstype, source) in enumerate(mounts)
    )


@pytest.fixture
def shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An NFS folder with the training data, the run's launch folder; the rest of the machine is ext4."""
    folder = tmp_path / "shared"
    folder.mkdir()
    (folder / "train.jsonl").write_text(CHAT * 4)
    table = tmp_path / "mountinfo"
    table.write_text(mountinfo(("/", "ext4", "/dev/sda1"), (folder, "nfs4", "storage:/export/home")))
    monkeypatch.setattr(storage, "MOUNTINFO", table)
    monkeypatch.chdir(folder)
    return folder


def read_json(path: Path) -> dict:
    data: dict = json.loads(path.read_text(encoding="utf-8"))
    return data
