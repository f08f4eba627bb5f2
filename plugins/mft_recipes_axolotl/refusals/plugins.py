"""The refusals of the argument models of axolotl 0.19's plugins (axolotl/integrations/*/args.py).

axolotl merges the argument model of every plugin a config lists into its config model before it
validates (axolotl.integrations.config.merge_input_args), so these apply only when `plugins:` names the
plugin. Each names the validator that raises it and says what axolotl says.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mft_recipes_axolotl.refusals.rule import LORA_KERNELS, AxolotlConfig, Refusal, given

CUT_CROSS_ENTROPY = "axolotl.integrations.cut_cross_entropy"
DIFFUSION = "axolotl.integrations.diffusion"
EXPERT_PARALLEL = "axolotl.integrations.expert_parallel"
KERNELS = "axolotl.integrations.kernels"
LIGER = "axolotl.integrations.liger"
NEMO_GYM = "axolotl.integrations.nemo_gym"
SPECTRUM = "axolotl.integrations.spectrum"
SWANLAB = "axolotl.integrations.swanlab"

EXPERT_BACKENDS = ("builtin", "eager", "scattermoe", "sonicmoe")
GROUPED_BACKENDS = ("auto", "cutlass", "deepgemm", "marlin")
NONEXPERT_QUANTIZATIONS = (
    "bf16",
    "fp8",
    "fp8_blockwise",
    "nf4",
    "none",
    "nvfp4",
)  # sorted, as axolotl prints them
SWANLAB_MODES = ("cloud", "local", "offline", "disabled")


def _expert_backend(c: AxolotlConfig) -> tuple[Any, Any]:
    """(use_scattermoe, use_sonicmoe) after KernelsArgs._canonicalize_expert_backend, which turns the
    chosen `expert_backend` on."""
    backend = str(c["expert_backend"]).lower() if c["expert_backend"] is not None else None
    return (
        c["use_scattermoe"] or backend == "scattermoe",
        c["use_sonicmoe"] or backend == "sonicmoe",
    )


def _backend_conflict(flag: str, backend: str) -> Any:
    def conflict(c: AxolotlConfig) -> dict[str, Any] | None:
        chosen = str(c["expert_backend"]).lower() if c["expert_backend"] is not None else None
        if chosen in EXPERT_BACKENDS and c[flag] is True and chosen != backend:
            return {"backend": repr(chosen)}
        return None

    return conflict


def _merge_aware(c: AxolotlConfig) -> bool:
    """nvfp4_merge_aware with what it needs (sonicmoe experts, a LoRA adapter): its later checks apply."""
    return bool(c["nvfp4_merge_aware"] and _expert_backend(c)[1] and c["adapter"] == "lora")


def _bad_start_step(c: AxolotlConfig) -> bool:
    start = c["nvfp4_merge_aware_start_step"]
    if start is None or not _merge_aware(c) or any(c[kernel] is True for kernel in LORA_KERNELS):
        return False
    if isinstance(start, bool):
        return True
    return (isinstance(start, float) and not 0 < start < 1) or (isinstance(start, int) and start < 0)


def _bad_chunk_size(c: AxolotlConfig) -> bool:
    chunk = c["moe_dequant_chunk_size"]
    if chunk is None:
        return False
    if isinstance(chunk, bool) or (isinstance(chunk, float) and not chunk.is_integer()):
        return True
    try:
        return int(chunk) <= 0
    except (TypeError, ValueError):
        return True


def _outside(key: str, *allowed: str) -> Callable[[AxolotlConfig], bool]:
    """The condition "`key` is set to none of `allowed`" (compared in lower case, as the plugin does)."""
    return lambda c: _lowered(c, key) not in (None, *allowed)


def _lowered(c: AxolotlConfig, key: str) -> str | None:
    return str(c[key]).lower() if c[key] is not None else None


KERNEL_REFUSALS = (
    Refusal(
        "check_nvfp4_merge_aware",
        ("nvfp4_merge_aware_start_step", "nvfp4_merge_aware"),
        "nvfp4_merge_aware_start_step requires nvfp4_merge_aware: true",
        lambda c: not c["nvfp4_merge_aware"] and c["nvfp4_merge_aware_start_step"] is not None,
        plugin=KERNELS,
    ),
    Refusal(
        "check_nvfp4_merge_aware",
        ("nvfp4_merge_aware", "expert_backend", "use_sonicmoe"),
        "nvfp4_merge_aware requires the sonicmoe expert backend (expert_backend: sonicmoe)",
        lambda c: c["nvfp4_merge_aware"] and not _expert_backend(c)[1],
        plugin=KERNELS,
    ),
    Refusal(
        "check_nvfp4_merge_aware",
        ("adapter", "nvfp4_merge_aware"),
        "nvfp4_merge_aware requires a LoRA adapter (adapter: lora); it snaps the LoRA delta to the NVFP4 grid of "
        "the frozen base",
        lambda c: c["nvfp4_merge_aware"] and _expert_backend(c)[1] and c["adapter"] != "lora",
        plugin=KERNELS,
    ),
    Refusal(
        "check_nvfp4_merge_aware",
        (*LORA_KERNELS, "nvfp4_merge_aware"),
        "nvfp4_merge_aware is incompatible with {fused}: the fused LoRA kernels compute the projections without "
        "calling lora.Linear.forward, so NVFP4 non-expert linears train un-snapped and the merge identity is "
        "silently void. Remove the lora_*_kernel flags (they are not auto-enabled when nvfp4_merge_aware is on).",
        lambda c: (
            _merge_aware(c)
            and (fused := [kernel for kernel in LORA_KERNELS if c[kernel] is True])
            and {"fused": ", ".join(fused)}
        ),
        plugin=KERNELS,
    ),
    Refusal(
        "check_nvfp4_merge_aware",
        ("nvfp4_merge_aware_start_step",),
        "nvfp4_merge_aware_start_step must be an int >= 0 (absolute step) or a float in (0, 1) (fraction of max "
        "steps), got {nvfp4_merge_aware_start_step!r}",
        _bad_start_step,
        plugin=KERNELS,
    ),
    Refusal(
        "check_dsv4_fp4_grouped_mode",
        ("dsv4_fp4_grouped_mode",),
        "dsv4_fp4_grouped_mode='fp8' is not implemented for training (only 'nvfp4' is supported). Use 'nvfp4' or "
        "omit dsv4_fp4_grouped_mode.",
        lambda c: _lowered(c, "dsv4_fp4_grouped_mode") == "fp8",
        plugin=KERNELS,
    ),
    Refusal(
        "check_dsv4_fp4_grouped_mode",
        ("dsv4_fp4_grouped_mode",),
        "dsv4_fp4_grouped_mode must be 'nvfp4', got {dsv4_fp4_grouped_mode!r}",
        _outside("dsv4_fp4_grouped_mode", "fp8", "nvfp4"),
        plugin=KERNELS,
    ),
    Refusal(
        "check_dsv4_fp8_nonexpert_mode",
        ("dsv4_fp8_nonexpert_mode",),
        "dsv4_fp8_nonexpert_mode must be 'float8tensor' or 'bf16', got {dsv4_fp8_nonexpert_mode!r}",
        _outside("dsv4_fp8_nonexpert_mode", "float8tensor", "bf16"),
        plugin=KERNELS,
    ),
    Refusal(
        "check_moe_dequant_chunk_size",
        ("moe_dequant_chunk_size",),
        "moe_dequant_chunk_size must be a positive integer, got {moe_dequant_chunk_size!r}",
        _bad_chunk_size,
        plugin=KERNELS,
    ),
    Refusal(
        "_canonicalize_expert_backend",
        ("expert_backend",),
        "expert_backend must be one of " + str(list(EXPERT_BACKENDS)) + ", got {given!r}",
        lambda c: (
            _lowered(c, "expert_backend") not in (None, *EXPERT_BACKENDS)
            and {"given": _lowered(c, "expert_backend")}
        ),
        plugin=KERNELS,
    ),
    Refusal(
        "_canonicalize_expert_backend",
        ("expert_backend", "use_scattermoe"),
        "expert_backend={backend} conflicts with use_scattermoe=true; set only one.",
        _backend_conflict("use_scattermoe", "scattermoe"),
        plugin=KERNELS,
    ),
    Refusal(
        "_canonicalize_expert_backend",
        ("expert_backend", "use_sonicmoe"),
        "expert_backend={backend} conflicts with use_sonicmoe=true; set only one.",
        lambda c: (
            not _backend_conflict("use_scattermoe", "scattermoe")(c)
            and _backend_conflict("use_sonicmoe", "sonicmoe")(c)
        ),
        plugin=KERNELS,
    ),
    Refusal(
        "check_moe_grouped_backend",
        ("moe_grouped_backend",),
        "moe_grouped_backend='dequant' is not implemented for training (the chunked-dequant fallback has no "
        "autograd path). Use 'auto' (default), 'marlin', 'deepgemm', or 'cutlass', or omit moe_grouped_backend.",
        lambda c: _lowered(c, "moe_grouped_backend") == "dequant",
        plugin=KERNELS,
    ),
    Refusal(
        "check_moe_grouped_backend",
        ("moe_grouped_backend",),
        "moe_grouped_backend must be one of " + str(list(GROUPED_BACKENDS)) + ", got {moe_grouped_backend!r}",
        _outside("moe_grouped_backend", "dequant", *GROUPED_BACKENDS),
        plugin=KERNELS,
    ),
    Refusal(
        "check_nonexpert_quantization",
        ("nonexpert_quantization",),
        "nonexpert_quantization must be one of "
        + str(list(NONEXPERT_QUANTIZATIONS))
        + ", got {nonexpert_quantization!r}",
        _outside("nonexpert_quantization", *NONEXPERT_QUANTIZATIONS),
        plugin=KERNELS,
    ),
    Refusal(
        "check_mutually_exclusive",
        ("use_scattermoe", "use_sonicmoe"),
        "Cannot use both ScatterMoE and SonicMoE simultaneously. Please set only one of `use_scattermoe` or "
        "`use_sonicmoe` to true.",
        lambda c: all(_expert_backend(c)),
        plugin=KERNELS,
    ),
    Refusal(
        "check_dsv4_attention_lora_unsupported",
        ("lora_target_modules", "lora_target_linear", "use_dsv4_kernels"),
        "attention/module-level LoRA is not supported with use_dsv4_kernels (this includes lora_target_modules and "
        "lora_target_linear: true, which expands to all linear layers incl. attention q/k/v/o): the fused indexer "
        "is gradientless (topk indices only) and attention LoRA reintroduces data-dependent FSDP2 backward "
        "collectives that break the experts-only invariant. Either (1) keep LoRA experts-only via "
        "lora_target_parameters, or (2) explicitly exclude the indexer scorer projections via "
        "lora_exclude_modules.",
        lambda c: (
            c["use_dsv4_kernels"]
            and (c["lora_target_modules"] or c["lora_target_linear"])
            and not c["lora_exclude_modules"]
        ),
        plugin=KERNELS,
    ),
)

LIGER_REFUSALS = (
    Refusal(
        "check_deprecated_swiglu",
        ("liger_swiglu", "liger_glu_activation"),
        "You cannot have both `liger_swiglu` and `liger_glu_activation` set.",
        given("liger_swiglu", "liger_glu_activation", any_value=True),
        plugin=LIGER,
    ),
    Refusal(
        "check_tiled_mlp_conflict",
        ("liger_glu_activation", "liger_swiglu", "tiled_mlp"),
        "You cannot have both `liger_glu_activation` and `tiled_mlp` set without `tiled_mlp_use_original_mlp: "
        "true`.",
        # check_deprecated_swiglu moves liger_swiglu to liger_glu_activation first.
        lambda c: (
            (
                c["liger_glu_activation"] is True
                or (c["liger_glu_activation"] is None and c["liger_swiglu"] is True)
            )
            and c["tiled_mlp"] is True
            and not c["tiled_mlp_use_original_mlp"]
        ),
        plugin=LIGER,
    ),
    Refusal(
        "check_liger_rms_norm_tensor_parallel",
        ("liger_rms_norm", "tensor_parallel_size"),
        "`liger_rms_norm` is incompatible with tensor parallelism, see "
        "https://github.com/linkedin/Liger-Kernel/issues/826",
        lambda c: c["liger_rms_norm"] and (c["tensor_parallel_size"] or 1) > 1,
        plugin=LIGER,
    ),
    Refusal(
        "check_liger_use_token_scaling_flce",
        ("liger_use_token_scaling", "liger_fused_linear_cross_entropy"),
        "`liger_use_token_scaling: true` requires `liger_fused_linear_cross_entropy` enabled.",
        lambda c: c["liger_use_token_scaling"] and not c["liger_fused_linear_cross_entropy"],
        plugin=LIGER,
    ),
    Refusal(
        "check_tensor_parallel_size_liger_fused_linear_cross_entropy",
        ("liger_fused_linear_cross_entropy", "tensor_parallel_size"),
        "Tensor parallelism is not compatible with liger losses.",
        lambda c: (c["tensor_parallel_size"] or 1) > 1 and c["liger_fused_linear_cross_entropy"],
        plugin=LIGER,
    ),
)

OTHER_PLUGIN_REFUSALS = (
    Refusal(
        "check_dtype_is_half",
        ("cut_cross_entropy", "bf16", "fp16"),
        "Cut Cross Entropy requires fp16/bf16 training for backward pass. Please set `bf16` or `fp16` to `True`.",
        lambda c: c["cut_cross_entropy"] and not (c["bf16"] or c["fp16"]),
        plugin=CUT_CROSS_ENTROPY,
    ),
    Refusal(
        "check_chunked_cross_entropy_not_set",
        ("chunked_cross_entropy",),
        "Cut Cross Entropy does not support chunked cross entropy. Please set `chunked_cross_entropy` to `False` or "
        "disable Cut Cross Entropy.",
        given("chunked_cross_entropy"),
        plugin=CUT_CROSS_ENTROPY,
    ),
    Refusal(
        "_validate_mask_ratios",
        ("diffusion.min_mask_ratio", "diffusion.max_mask_ratio"),
        "min_mask_ratio must be ≤ max_mask_ratio",
        lambda c: (
            c.section("diffusion").get("min_mask_ratio", 0.1)
            > c.section("diffusion").get("max_mask_ratio", 0.9)
        ),
        plugin=DIFFUSION,
    ),
    Refusal(
        "_validate",
        ("expert_parallel_size",),
        "expert_parallel_size must be >= 1 (got {expert_parallel_size!r}). Use 1 to disable EP.",
        lambda c: isinstance(c["expert_parallel_size"], int) and c["expert_parallel_size"] < 1,
        plugin=EXPERT_PARALLEL,
    ),
    Refusal(
        "_validate",
        ("expert_parallel_token_capacity",),
        "expert_parallel_token_capacity must be >= 1 when set (got {expert_parallel_token_capacity!r}). Use None "
        "to disable the cap.",
        lambda c: (
            isinstance(c["expert_parallel_token_capacity"], int) and c["expert_parallel_token_capacity"] < 1
        ),
        plugin=EXPERT_PARALLEL,
    ),
    Refusal(
        "check_nemo_gym_config",
        ("nemo_gym_config_paths", "nemo_gym_enabled"),
        "nemo_gym_config_paths is required when nemo_gym_enabled=True and nemo_gym_auto_start is not False.",
        lambda c: (
            c["nemo_gym_enabled"]
            and not c["nemo_gym_config_paths"]
            and c.document.get("nemo_gym_auto_start", True)
        ),
        plugin=NEMO_GYM,
    ),
    Refusal(
        "check_nemo_gym_config",
        ("nemo_gym_datasets", "nemo_gym_enabled"),
        "nemo_gym_datasets is required when nemo_gym_enabled=True. Provide at least one dataset with 'path' and "
        "'server_name'.",
        lambda c: (
            c["nemo_gym_enabled"]
            and (c["nemo_gym_config_paths"] or not c.document.get("nemo_gym_auto_start", True))
            and not c["nemo_gym_datasets"]
        ),
        plugin=NEMO_GYM,
    ),
    Refusal(
        "check_fsdp_use_orig_params",
        ("fsdp_config.use_orig_params", "plugins"),
        "FSDP + SpectrumPlugin cannot be used together when `use_orig_params=False` is set",
        lambda c: (
            c["fsdp"]
            and c["fsdp_config"]
            and not c.fsdp("use_orig_params")
            and any("SpectrumPlugin" in str(plugin) for plugin in c["plugins"])
        ),
        plugin=SPECTRUM,
    ),
    Refusal(
        "validate_swanlab_mode",
        ("swanlab_mode",),
        "Invalid swanlab_mode: '{swanlab_mode}'.",
        lambda c: c["swanlab_mode"] is not None and c["swanlab_mode"] not in SWANLAB_MODES,
        plugin=SWANLAB,
    ),
    Refusal(
        "validate_swanlab_project",
        ("swanlab_project",),
        "swanlab_project cannot be an empty string.",
        lambda c: isinstance(c["swanlab_project"], str) and not c["swanlab_project"].strip(),
        plugin=SWANLAB,
    ),
    Refusal(
        "validate_swanlab_enabled_requires_project",
        ("use_swanlab", "swanlab_project"),
        "SwanLab enabled (use_swanlab: true) but 'swanlab_project' is not set.",
        # use_swanlab defaults to true once the plugin is listed.
        lambda c: c.document.get("use_swanlab", True) is True and not c["swanlab_project"],
        plugin=SWANLAB,
    ),
)

REFUSALS = KERNEL_REFUSALS + LIGER_REFUSALS + OTHER_PLUGIN_REFUSALS
