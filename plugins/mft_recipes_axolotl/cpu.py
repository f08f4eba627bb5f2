"""The CPU profile: a GPU recipe, rendered with `device=cpu`, as a run that works on a machine with no GPU.

Recipes are written for the GPUs they name. A CPU run (a smoke test of a recipe on a tiny model, CI, the
axolotl test tier) needs exactly these changes and no others, so that what it proves is the recipe:

- no bf16, fp16 or tf32 (CPU training is float32 here; `bf16: auto` would probe for a GPU);
- SDPA attention instead of flash attention (a CUDA kernel);
- axolotl's Triton LoRA kernels off (validation turns them on by default; they fail without CUDA);
- `quantize_moe_experts` off: it quantizes the fused experts with CUDA kernels at load time.

Everything else (targets, ranks, dropout, packing, optimizer, DeepSpeed section) stays as the recipe says.
"""

from __future__ import annotations

from typing import Any

DEVICE_PARAMETER = "device"

CPU_SETTINGS: dict[str, Any] = {
    "bf16": False,
    "fp16": False,
    "tf32": False,
    "attn_implementation": "sdpa",
    "lora_mlp_kernel": False,
    "lora_qkv_kernel": False,
    "lora_o_kernel": False,
    "lora_embedding_kernel": False,
}
# Keys that only mean something on CUDA, dropped rather than set: `flash_attention` is the deprecated
# spelling of attn_implementation; quantize_moe_experts needs CUDA kernels.
CUDA_ONLY = ("flash_attention", "quantize_moe_experts")


def is_cpu_run(document: dict[str, Any]) -> bool:
    """Whether a document is a CPU run as the profile writes it: every one of CPU_SETTINGS as it sets them.
    Validators read it from the document, so a CPU run saved with `render -o` and validated later is
    judged as one too."""
    return all(key in document and document[key] == value for key, value in CPU_SETTINGS.items())


def apply_cpu_profile(document: dict[str, Any]) -> None:
    """Turn a rendered axolotl document into its CPU run, in place."""
    for key in CUDA_ONLY:
        document.pop(key, None)
    document.update(CPU_SETTINGS)


def adjust_for_device(document: dict[str, Any], context: Any) -> None:
    """The `adjust_document` hook's work: apply the CPU profile to an axolotl document whose recipe
    declares a `device` parameter and was rendered with `device=cpu`."""
    if context.target.kind == "axolotl" and context.parameters.get(DEVICE_PARAMETER) == "cpu":
        apply_cpu_profile(document)
