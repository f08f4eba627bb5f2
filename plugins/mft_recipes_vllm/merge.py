"""Merging an adapter into its base with peft, and proving the merged model computes what base+adapter did.

The base is loaded in its stored 16-bit (or 32-bit) dtype: a QLoRA adapter is merged onto the
dequantized weights, never onto 4-bit ones (rounding the merged weights to 4 bits would lose the
fine-tuning). Needs torch, transformers and peft; not vLLM.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Prompts for the logits check: plain text, different lengths, one with Mistral's instruct markers.
CHECK_PROMPTS = (
    "The capital of France is",
    "[INST] Write one sentence about the sea.[/INST]",
    "def fibonacci(n):\n    if n < 2:\n        return n\n",
)
# Largest allowed |merged - adapter| logit difference, relative to the largest |logit|: float32 merges
# differ by summation order only; 16-bit ones also by rounding W + BA to 16 bits.
RELATIVE_TOLERANCE = {"float32": 1e-5, "bfloat16": 2e-2, "float16": 5e-3}


class MergeError(RuntimeError):
    """The merge cannot be done as asked; the message says why and what to do."""


def base_config(base: str) -> dict[str, Any]:
    """The base's config.json when `base` is a local folder, else {} (a hub id: transformers fetches it)."""
    config = Path(base) / "config.json"
    return json.loads(config.read_text(encoding="utf-8")) if config.is_file() else {}


def merge_adapter(
    adapter_dir: Path, base: str, output: Path, *, dtype: str = "auto", chat_template: str | None = None
) -> dict[str, Any]:
    """Merge `adapter_dir` into `base`, save safetensors + tokenizer (with `chat_template`, the format the
    adapter was trained on) to `output`, and check the logits.

    Returns the logits check: {dtype, prompts, max_abs_diff, tolerance, relative_tolerance, passed}.
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = base_config(base)
    if config.get("quantization_config"):
        method = config["quantization_config"].get("quant_method", "quantized")
        raise MergeError(
            f"{base} is stored {method}: merging onto quantized weights loses the fine-tuning. Pass the "
            "16-bit base the adapter was trained from with --base (QLoRA trains against it; it is merged "
            "dequantized)."
        )
    torch_dtype = _dtype(dtype, config)
    tokenizer_source = adapter_dir if (adapter_dir / "tokenizer_config.json").is_file() else base
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    prompts = [tokenizer(text, return_tensors="pt").input_ids for text in CHECK_PROMPTS]

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch_dtype)
    adapted = PeftModel.from_pretrained(model, str(adapter_dir))
    adapted.eval()
    with torch.no_grad():
        expected = [adapted(ids).logits.float() for ids in prompts]
    merged = adapted.merge_and_unload()
    merged.save_pretrained(output)
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    tokenizer.save_pretrained(output)
    del merged, adapted, model
    # Reload from disk: the check covers what was written (Mixtral saves in the per-expert w1/w2/w3 layout).
    reloaded = AutoModelForCausalLM.from_pretrained(output, dtype=torch_dtype)
    reloaded.eval()
    with torch.no_grad():
        actual = [reloaded(ids).logits.float() for ids in prompts]
    max_diff = max(float((a - e).abs().max()) for a, e in zip(actual, expected, strict=True))
    scale = max(1.0, max(float(e.abs().max()) for e in expected))
    dtype_name = str(torch_dtype).removeprefix("torch.")
    relative = RELATIVE_TOLERANCE.get(dtype_name, 2e-2)
    return {
        "dtype": dtype_name,
        "prompts": len(prompts),
        "max_abs_diff": max_diff,
        "tolerance": relative * scale,
        "relative_tolerance": relative,
        "passed": max_diff <= relative * scale,
    }


def _dtype(name: str, config: dict[str, Any]) -> Any:
    import torch

    if name == "auto":
        name = str(config.get("dtype") or config.get("torch_dtype") or "bfloat16")
    if name not in RELATIVE_TOLERANCE:
        raise MergeError(f"dtype {name!r}: expected auto, {', '.join(RELATIVE_TOLERANCE)}")
    return getattr(torch, name)
