"""The columns of an eval report: the base model, and the adapter on it, as a LoRA on the base's engine
when vLLM can serve it so, else as the merged model `export` writes, on an engine of its own."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mft_recipes_vllm.adapters import read_adapter, serving_reasons, smallest_lora_rank
from mft_recipes_vllm.eval_data import EvalError
from mft_recipes_vllm.merge import base_config


@dataclass
class Variant:
    """One column of the report: the base, or the base with the adapter (LoRA on the same engine, or a
    merged model on its own engine)."""

    name: str
    model: str
    lora: str | None = None
    max_lora_rank: int | None = None


def plan_variants(model: str, adapter: str | None, *, device: str) -> list[Variant]:
    """The base, and the adapter as a LoRA (when vLLM on `device` can serve it) or as a merged model."""
    variants = [Variant("base", model)]
    if adapter is None:
        return variants
    folder = Path(adapter)
    if (folder / "adapter_config.json").is_file():
        found = read_adapter(folder)
        model_type = str(base_config(model).get("model_type", ""))
        blocking = [
            reason.message for reason in serving_reasons(found, model_type, device) if reason.blocks_lora
        ]
        if blocking:
            raise EvalError(
                f"--adapter {adapter}: vLLM cannot serve it as LoRA here ({'; '.join(blocking)}). Run "
                f"`mft-recipes export {adapter} --base {model}` and pass the merged folder it writes as --adapter."
            )
        variants.append(
            Variant(
                "adapter", model, lora=str(folder.resolve()), max_lora_rank=smallest_lora_rank(found.rank)
            )
        )
    elif (folder / "config.json").is_file():
        variants.append(Variant("adapter", str(folder)))
    else:
        raise EvalError(
            f"--adapter {adapter}: neither a LoRA adapter (adapter_config.json) nor a model (config.json)"
        )
    return variants
