"""The refusals of axolotl 0.19's config.py (axolotl/utils/schemas/config.py), one `Refusal` each: the
validators of AxolotlInputConfig itself, then those of AxolotlConfigWCapabilities, which also read the
training machine's capabilities (the GPUs `validate --gpus`/`--gpu` names; quiet when it is not told).
"""

from __future__ import annotations

import re
from typing import Any

from mft_recipes_axolotl.refusals.rule import (
    ATTENTION_BACKENDS,
    LEGACY_ATTENTION_FLAGS,
    AxolotlConfig,
    Refusal,
    given,
)

# The short names of attention backends axolotl refuses (enums.SHORT_FORM_ALIAS_TO_CANONICAL).


ATTENTION_ALIASES = {"flash": "flash_attention_2", "flex": "flex_attention", "sdp": "sdpa"}


# enums.INDUCTOR_COMPILE_OPTIONS_ALLOWLIST
INDUCTOR_OPTIONS = frozenset(
    {
        "coordinate_descent_tuning",
        "coordinate_descent_check_all_directions",
        "shape_padding",
        "epilogue_fusion",
        "max_autotune_gemm",
        "fx_graph_cache",
        "assume_aligned_inputs",
        "comprehensive_padding",
        "decompose_mem_bound_mm",
        "triton.cudagraphs",
    }
)


SAGE_COMPUTE_CAPABILITIES = ("sm_80", "sm_86", "sm_89", "sm_90", "sm_120")


def _legacy_attention_flags(c: AxolotlConfig) -> dict[str, Any] | None:
    flags = sorted(flag for flag in LEGACY_ATTENTION_FLAGS if c[flag])
    if c["attn_implementation"] and flags:
        return {"given": repr(c["attn_implementation"]), "flags": ", ".join(flags)}
    return None


def _unknown_attention(c: AxolotlConfig) -> dict[str, Any] | None:
    value = c["attn_implementation"]
    if (
        not isinstance(value, str)
        or value in ATTENTION_BACKENDS
        or "/" in value
        or value in ATTENTION_ALIASES
    ):
        return None
    return {"given": repr(value), "known": sorted(ATTENTION_BACKENDS)}


def _inductor_options(c: AxolotlConfig) -> dict[str, Any] | None:
    options = c["torch_compile_options"]
    bad = sorted(set(options) - INDUCTOR_OPTIONS) if isinstance(options, dict) else []
    return {"bad": bad, "allowed": sorted(INDUCTOR_OPTIONS)} if bad else None


def _invalid_regexes(c: AxolotlConfig) -> dict[str, Any] | None:
    targets = c["lora_target_modules"]
    invalid = []
    for pattern in targets if isinstance(targets, list) else []:
        try:
            re.compile(pattern) if isinstance(pattern, str) else None
        except re.error:
            invalid.append(pattern)
    return {"invalid": invalid} if invalid else None


INPUT_CONFIG = (
    Refusal(
        "normalize_attn_implementation",
        ("attn_implementation", "gemma4_hybrid_attn_impl"),
        "gemma4_hybrid_attn_impl requires attn_implementation=flash_attention_2 (sliding-window layers run under "
        "FA2); got {given}.",
        lambda c: (
            c["gemma4_hybrid_attn_impl"]
            and c["attn_implementation"]
            and c["attn_implementation"] != "flash_attention_2"
            and {"given": repr(c["attn_implementation"])}
        ),
    ),
    Refusal(
        "normalize_attn_implementation",
        ("attn_implementation", *LEGACY_ATTENTION_FLAGS),
        "attn_implementation={given} cannot be combined with legacy attention flags ({flags}). The legacy flags "
        "are deprecated — set only `attn_implementation`.",
        _legacy_attention_flags,
    ),
    Refusal(
        "validate_large_head_attention",
        ("large_head_attention",),
        "large_head_attention must be one of ['auto', 'sdpa', 'triton_flash'], got {given}",
        lambda c: (
            c["large_head_attention"] is not None
            and str(c["large_head_attention"]).lower() not in ("auto", "sdpa", "triton_flash")
            and {"given": repr(c["large_head_attention"])}
        ),
    ),
    Refusal(
        "validate_attn_implementation",
        ("attn_implementation",),
        "attn_implementation must be a string, got {type}",
        lambda c: (
            c["attn_implementation"] is not None
            and not isinstance(c["attn_implementation"], str)
            and {"type": type(c["attn_implementation"]).__name__}
        ),
    ),
    Refusal(
        "validate_attn_implementation",
        ("attn_implementation",),
        "attn_implementation={given} is not accepted. Use the canonical name {canonical} instead.",
        lambda c: (
            c["attn_implementation"] in ATTENTION_ALIASES
            and {
                "given": repr(c["attn_implementation"]),
                "canonical": repr(ATTENTION_ALIASES[c["attn_implementation"]]),
            }
        ),
    ),
    Refusal(
        "validate_attn_implementation",
        ("attn_implementation",),
        "attn_implementation={given} is not a recognized backend. Expected one of: {known}, or a hub-kernel path "
        "containing '/'.",
        _unknown_attention,
    ),
    Refusal(
        "validate_torch_compile_options",
        ("torch_compile_options",),
        "torch_compile_options contains disallowed inductor flags: {bad}. Allowed: {allowed}.",
        _inductor_options,
    ),
    Refusal(
        "check_torch_compile_options_requires_compile",
        ("torch_compile_options", "torch_compile"),
        "torch_compile_options is set but torch_compile is not enabled. Set torch_compile: true (or "
        "torch_compile: auto) to use these flags.",
        lambda c: c["torch_compile_options"] is not None and not c["torch_compile"],
    ),
    Refusal(
        "check_fp32_norms",
        ("fp32_norms", "fsdp_config"),
        "fp32_norms requires FSDP to be enabled (fsdp_config block must be set).",
        lambda c: c["fp32_norms"] and c["fsdp_config"] is None,
    ),
    Refusal(
        "check_fp32_norms",
        ("fp32_norms", "fsdp_version"),
        "fp32_norms requires fsdp_version: 2. FSDP1's flat-param dtype uniformity constraint is incompatible with "
        "keeping norms in fp32 while decoder layers run in bf16.",
        lambda c: c["fp32_norms"] and c["fsdp_config"] is not None and str(c.fsdp_version) != "2",
    ),
    Refusal(
        "check_flash_attention_torch_preflight",
        ("attn_implementation",),
        # The transformers axolotl 0.19 pins (5.16.1) does not register the backend.
        "attn_implementation=flash_attention_torch requires a transformers release that registers torch's varlen "
        "attention backend (https://github.com/huggingface/transformers/pull/45153).",
        lambda c: c["attn_implementation"] == "flash_attention_torch",
    ),
    Refusal(
        "check_ple_cpu_offload",
        ("ple_cpu_offload", "fsdp_config", "fsdp"),
        "ple_cpu_offload is not compatible with FSDP",
        lambda c: c["ple_cpu_offload"] and (c["fsdp_config"] is not None or c["fsdp"] is not None),
    ),
    Refusal(
        "check_ple_cpu_offload",
        ("ple_cpu_offload", "deepspeed"),
        "ple_cpu_offload is not compatible with DeepSpeed",
        lambda c: c["ple_cpu_offload"] and c["fsdp_config"] is None and c["fsdp"] is None and c["deepspeed"],
    ),
    Refusal(
        "check_ple_cpu_offload",
        ("ple_cpu_offload", "adapter"),
        "ple_cpu_offload requires qlora with load_in_4bit or lora with load_in_8bit",
        lambda c: (
            c["ple_cpu_offload"]
            and c["fsdp_config"] is None
            and c["fsdp"] is None
            and not c["deepspeed"]
            and not (
                (c["adapter"] == "qlora" and c["load_in_4bit"])
                or (c["adapter"] == "lora" and c["load_in_8bit"])
            )
        ),
    ),
    Refusal(
        "check_save_strategy_best_requires_metric",
        ("save_strategy", "metric_for_best_model"),
        "save_strategy: 'best' requires metric_for_best_model to be set. Please specify the metric to use, e.g. "
        "metric_for_best_model: eval_loss",
        lambda c: c["save_strategy"] == "best" and not c["metric_for_best_model"],
    ),
    Refusal(
        "check_lora_target_modules_regex",
        ("lora_target_modules",),
        "lora_target_modules contains invalid regex pattern(s): {invalid}. Please provide valid Python regex "
        "patterns or plain module name strings.",
        _invalid_regexes,
    ),
)


# AxolotlConfigWCapabilities: the validators that also read the training machine's capabilities.
CAPABILITIES = (
    Refusal(
        "check_fp8",
        ("fp8",),
        "fp8 requested, but fp8 is not supported on this GPU",
        # axolotl's compute_supports_fp8: compute capability 9.0 or newer.
        lambda c: c["fp8"] and c.capability_at_least(9) is False,
    ),
    Refusal(
        "check_compute_capability_w_sageattn",
        ("attn_implementation",),
        "SageAttention supports compute capability between sm_80 and sm_120. Please use a different attention "
        "implementation.",
        lambda c: (
            c.attn_implementation == "sage"
            and c.compute_capability is not None
            and c.compute_capability not in SAGE_COMPUTE_CAPABILITIES
        ),
    ),
    Refusal(
        "check_fp8_attention_preflight",
        ("attn_implementation",),
        "attn_implementation=fp8 requires compute capability sm_90 or higher (Hopper+). Detected {cc}.",
        lambda c: (
            c.attn_implementation == "fp8"
            and c.capability_at_least(9) is False
            and {"cc": repr(c.compute_capability)}
        ),
    ),
    Refusal(
        "check_multigpu_lora_kernels",
        ("lora_mlp_kernel", "lora_qkv_kernel", "lora_o_kernel", "fsdp_version"),
        "lora_mlp_kernel, lora_qkv_kernel, and lora_o_kernel are not compatible with FSDP1.",
        # Read before check_fsdp_version_in_fsdp_config sets the top-level fsdp_version.
        lambda c: (
            (c.lora_kernels or c["lora_embedding_kernel"])
            and (c.gpus or 0) > 1
            and c["fsdp_config"] is not None
            and str(c["fsdp_version"]) != "2"
        ),
    ),
    Refusal(
        "check_quantize_moe_experts",
        ("lora_target_linear", "quantize_moe_experts"),
        "lora_target_linear is not compatible with quantize_moe_experts. Use lora_target_parameters to target "
        "expert weights instead.",
        given("quantize_moe_experts", "lora_target_linear"),
    ),
    Refusal(
        "check_quantize_moe_experts",
        ("quantize_moe_experts", "adapter"),
        "quantize_moe_experts requires adapter: lora or qlora",
        lambda c: c["quantize_moe_experts"] and not c["lora_target_linear"] and not c.lora,
    ),
    Refusal(
        "check_quantize_moe_experts",
        ("quantize_moe_experts", "load_in_4bit"),
        "quantize_moe_experts requires load_in_4bit or load_in_8bit",
        lambda c: c["quantize_moe_experts"] and not c["lora_target_linear"] and c.lora and not c.quantized,
    ),
    Refusal(
        "check_beta_and_trl_beta_match",
        ("beta", "trl.beta"),
        "beta and trl.beta must match or one must be removed",
        lambda c: c["beta"] and c.section("trl").get("beta") and c["beta"] != c.section("trl")["beta"],
    ),
    Refusal(
        "check_qat_config",
        ("qat", "peft"),
        "QAT and PEFT cannot be used together.",
        given("qat", "peft"),
    ),
    Refusal(
        "check_qat_config",
        ("qat", "load_in_8bit"),
        "QAT and load_in_8bit cannot be used together.",
        lambda c: c["qat"] and not c["peft"] and c["load_in_8bit"],
    ),
    Refusal(
        "check_qat_config",
        ("qat", "load_in_4bit"),
        "QAT and load_in_4bit cannot be used together.",
        lambda c: c["qat"] and not c["peft"] and not c["load_in_8bit"] and c["load_in_4bit"],
    ),
    Refusal(
        "check_qat_config",
        ("qat.activation_dtype",),
        "Ternary QAT only supports activation_dtype: int8.",
        lambda c: (
            c.section("qat").get("weight_dtype") == "ternary"
            and c.section("qat").get("activation_dtype") not in (None, "int8")
        ),
    ),
    Refusal(
        "check_deduplication_with_streaming",
        ("dataset_exact_deduplication", "streaming", "pretraining_dataset"),
        "dataset_exact_deduplication is not available for streaming datasets. ",
        lambda c: c["dataset_exact_deduplication"] and (c["streaming"] or c["pretraining_dataset"]),
    ),
    Refusal(
        "check_deduplication_with_skip_prepare",
        ("dataset_exact_deduplication", "skip_prepare_dataset"),
        "dataset_exact_deduplication=True has no effect when skip_prepare_dataset=True. Deduplication runs as part "
        "of the prepare pipeline, which is skipped. Either set skip_prepare_dataset: false or disable "
        "dataset_exact_deduplication.",
        given("dataset_exact_deduplication", "skip_prepare_dataset"),
    ),
)

REFUSALS = INPUT_CONFIG + CAPABILITIES
