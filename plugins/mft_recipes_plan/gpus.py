"""The GPU table: memory, BF16 peak, the network between machines and an hourly price per card, kept as
data the user can override.

The built-in table is gpus.yaml next to this module. A user's table (`--gpu-table FILE`, or the file
named by MFT_RECIPES_GPU_TABLE) has the same shape; its entries replace or add to the built-in ones.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

ENVIRONMENT_VARIABLE = "MFT_RECIPES_GPU_TABLE"
FIELDS = {"memory_gib": float, "bf16_tflops": float, "usd_per_hour": float}


class GpuTableError(ValueError):
    """A GPU table that cannot be read, or a GPU name it does not have: a usage error."""


class InvalidGpuTable(GpuTableError):
    """A GPU table file that was read and is not a valid table: invalid input."""


@dataclass(frozen=True)
class Gpu:
    """One card: what it holds, how fast it multiplies in BF16, what an hour costs, and the sources."""

    name: str
    title: str
    memory_gib: float
    bf16_tflops: float
    usd_per_hour: float
    price_source: str = ""
    compute_capability: str | None = None  # "9.0": what bf16, tf32 and fp8 support follow from
    # Inter-node bandwidth per GPU, Gbit/s one way (None: the table does not say), and where it comes from.
    interconnect_gbps: float | None = None
    interconnect_source: str = ""

    def capability(self) -> tuple[int, int] | None:
        """The compute capability as (major, minor), or None when the table does not say."""
        if not self.compute_capability:
            return None
        major, minor = self.compute_capability.split(".")
        return int(major), int(minor)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def load_gpu_table(path: str | Path | None = None) -> dict[str, Gpu]:
    """The built-in table, then the one in $MFT_RECIPES_GPU_TABLE, then `path`, later entries winning."""
    table = dict(_builtin_table())
    for extra in (os.environ.get(ENVIRONMENT_VARIABLE), path):
        if extra:
            table.update(_read_table(Path(extra)))
    return table


def find_gpu(name: str, table: dict[str, Gpu]) -> Gpu:
    if name not in table:
        raise GpuTableError(
            f"unknown GPU {name!r}; known: {', '.join(sorted(table))} (add it with --gpu-table FILE, "
            f"entries with memory_gib, bf16_tflops, usd_per_hour)"
        )
    return table[name]


@cache
def _builtin_table() -> dict[str, Gpu]:
    text = resources.files("mft_recipes_plan").joinpath("gpus.yaml").read_text(encoding="utf-8")
    return _parse(_load_yaml(text), "gpus.yaml (built in)")


def _read_table(path: Path) -> dict[str, Gpu]:
    try:
        data = _load_yaml(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise GpuTableError(f"{path}: cannot read the GPU table ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise InvalidGpuTable(f"{path}: not YAML or JSON ({error})") from None
    try:
        return _parse(data, str(path))
    except GpuTableError as error:
        raise InvalidGpuTable(str(error)) from None


def _load_yaml(text: str) -> Any:
    # libyaml's loader when PyYAML has it: `render` plans every document it prints, so this is on its path.
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _parse(data: Any, source: str) -> dict[str, Gpu]:
    entries = data.get("gpus") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        raise GpuTableError(
            f"{source}: expected a mapping `gpus: {{NAME: {{memory_gib, bf16_tflops, usd_per_hour}}}}`"
        )
    table = {}
    for name, entry in entries.items():
        if not isinstance(entry, dict):
            raise GpuTableError(f"{source}: gpus.{name}: expected a mapping")
        values = {}
        for key, kind in FIELDS.items():
            value = entry.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise GpuTableError(f"{source}: gpus.{name}.{key}: expected a positive number, got {value!r}")
            values[key] = kind(value)
        capability = entry.get("compute_capability")
        if capability is not None and not re.fullmatch(r"[0-9]+\.[0-9]", str(capability)):
            raise GpuTableError(
                f'{source}: gpus.{name}.compute_capability: expected "major.minor" such as "9.0", got {capability!r}'
            )
        interconnect = entry.get("interconnect_gbps")
        if interconnect is not None and (
            isinstance(interconnect, bool) or not isinstance(interconnect, (int, float)) or interconnect <= 0
        ):
            raise GpuTableError(
                f"{source}: gpus.{name}.interconnect_gbps: expected a positive number of Gbit/s, got {interconnect!r}"
            )
        table[str(name)] = Gpu(
            name=str(name),
            title=str(entry.get("title", name)),
            price_source=str(entry.get("price_source", "")),
            compute_capability=None if capability is None else str(capability),
            interconnect_gbps=None if interconnect is None else float(interconnect),
            interconnect_source=str(entry.get("interconnect_source", "")),
            **values,
        )
    return table
