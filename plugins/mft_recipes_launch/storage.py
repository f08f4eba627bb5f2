"""Which paths every node of a cluster sees: the filesystem a path is on, from this machine's mount table.

A run on several nodes reads its config, data and model, and writes its checkpoints, through paths that
must mean the same folder on every node. A network or cluster filesystem (NFS, Lustre, GPFS, BeeGFS, ...)
is mounted on every node; a local disk (ext4, xfs, tmpfs, ...) is one machine's own. `launch` reads the
mount table where it runs (Linux's /proc/self/mountinfo), which on a cluster's login node mounts the same
shared filesystems as its compute nodes. Where it cannot tell (no mount table, a filesystem type not in
either list), or where the bundle is written on another machine than the one that trains, `--shared DIR`
says that DIR is mounted at the same path on every node.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

MOUNTINFO = Path("/proc/self/mountinfo")
# Filesystems every node of a cluster mounts (network, parallel and cluster filesystems, and FUSE clients
# of object stores and network filesystems), by the type the kernel reports.
SHARED_TYPES = frozenset(
    {
        "nfs", "nfs4", "lustre", "gpfs", "beegfs", "cifs", "smb3", "smbfs", "ceph", "glusterfs", "wekafs",
        "orangefs", "pvfs2", "gfs2", "ocfs2", "panfs", "afs", "fuse.glusterfs", "fuse.cephfs", "fuse.sshfs",
        "fuse.gcsfuse", "fuse.s3fs", "fuse.juicefs", "fuse.rclone", "fuse.mountpoint-s3", "fuse.weka",
        "fuse.blobfuse2",
    }
)  # fmt: skip
# Filesystems of one machine: disks, memory, a container's layers, a virtual machine's host share.
LOCAL_TYPES = frozenset(
    {
        "ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "f2fs", "jfs", "reiserfs", "bcachefs", "vfat", "exfat",
        "ntfs", "ntfs3", "tmpfs", "ramfs", "devtmpfs", "overlay", "squashfs", "virtiofs", "9p", "apfs", "hfs",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Mount:
    point: Path
    fstype: str
    source: str


@dataclass(frozen=True)
class Placement:
    """Where a path of the run is: `resolved` (absolute, links followed), the mount it is on, and the
    `--shared` folder that holds it, if any."""

    resolved: Path
    mount: Mount | None
    declared: Path | None = None

    @property
    def verdict(self) -> str:
        """ "shared" (every node sees it), "local" (one machine's own disk) or "unknown"."""
        if self.declared is not None:
            return "shared"
        if self.mount is None:
            return "unknown"
        if self.mount.fstype in SHARED_TYPES:
            return "shared"
        return "local" if self.mount.fstype in LOCAL_TYPES else "unknown"

    def describe(self) -> str:
        """`ext4 on /dev/nvme0n1, mounted at /data`, or why nothing more is known."""
        if self.declared is not None:
            return f"under --shared {self.declared}"
        if self.mount is None:
            return "no mount table here to tell its filesystem"
        return f"{self.mount.fstype} on {self.mount.source}, mounted at {self.mount.point}"


def read_mounts() -> list[Mount]:
    """The mount table (`/proc/self/mountinfo`: mount point in field 5, filesystem type and source after
    the ` - ` separator, spaces and other bytes written as octal escapes); empty where there is none."""
    try:
        lines = MOUNTINFO.read_text(encoding="utf-8", errors="surrogateescape").splitlines()
    except OSError:
        return []
    mounts = []
    for line in lines:
        fields = line.split(" ")
        if "-" not in fields[6:]:
            continue
        after = fields.index("-", 6)
        if len(fields) < after + 3:
            continue
        mounts.append(Mount(Path(_unescape(fields[4])), fields[after + 1], _unescape(fields[after + 2])))
    return mounts


def _unescape(text: str) -> str:
    r"""mountinfo writes space, tab, newline and backslash as \040, \011, \012, \134."""
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), text)


def place(path: Path, mounts: list[Mount], shared: tuple[Path, ...] = ()) -> Placement:
    """Where `path` (absolute) is: the deepest mount holding it, and the first `--shared` folder that does."""
    resolved = Path(os.path.realpath(path))
    declared = next(
        (folder for folder in shared if resolved.is_relative_to(Path(os.path.realpath(folder)))), None
    )
    mount = None
    for candidate in mounts:  # the deepest; of mounts on the same point, the last (it hides the others)
        deeper = mount is None or len(candidate.point.parts) >= len(mount.point.parts)
        if resolved.is_relative_to(candidate.point) and deeper:
            mount = candidate
    return Placement(resolved, mount, declared)
