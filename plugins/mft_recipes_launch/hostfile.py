"""DeepSpeed hostfiles: one `HOST slots=N` line per machine, read the way DeepSpeed's launcher reads them
(`_parse_hostfile` in deepspeed/launcher/runner.py: a line matching `^(\\S+)\\s+slots=(\\d+)`, `#` comments
and blank lines skipped, a host named twice or a line of anything else refused). The axolotl tier holds this
reader to DeepSpeed's own on the hostfiles `launch` writes.
"""

from __future__ import annotations

import re

LINE = re.compile(r"^(\S+)\s+slots=(\d+)")


class HostfileError(ValueError):
    """A hostfile DeepSpeed's launcher would refuse."""


def format_hostfile(hosts: tuple[str, ...], slots: int) -> str:
    return "".join(f"{host} slots={slots}\n" for host in hosts)


def parse_hostfile(text: str) -> dict[str, int]:
    """Hosts and their slots, in order, as DeepSpeed reads them."""
    pool: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = LINE.search(line)
        if match is None:
            raise HostfileError(f"line {number}: expected `HOST slots=N`, got {line!r}")
        host, slots = match.group(1), int(match.group(2))
        if host in pool:
            raise HostfileError(f"line {number}: {host} is named twice")
        pool[host] = slots
    if not pool:
        raise HostfileError("no `HOST slots=N` line")
    return pool
