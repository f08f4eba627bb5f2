"""The refusals of axolotl 0.19's validation.py (axolotl/utils/schemas/validation.py), one `Refusal` each,
grouped by its mixins in its order: datasets, attention, training, LoRA, RL, optimization, system, chat
template, pretraining, model compatibility, the "complex" ones, EBFT.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from mft_recipes_axolotl.refusals.rule import ATTENTION_BACKENDS, AxolotlConfig, Refusal, given

# enums.ATTN_IMPLS_SUPPORTING_PACKING: the backends that pack samples by position_ids, every one axolotl knows
# but eager, sdpa and fp8, and three hub kernels.
PACKING_BACKENDS = ATTENTION_BACKENDS - {"eager", "sdpa", "fp8"} | {
    "kernels-community/flash-attn2",
    "kernels-community/flash-attn3",
    "kernels-community/sage-attention",
}


# validation.SUPPORTED_METRICS, printed as axolotl prints the set (its iteration order).
CAUSAL_LM_METRICS = ("sacrebleu", "comet", "ter", "chrf", "perplexity")


UNSLOTH_KEYS = (
    "unsloth_cross_entropy_loss",
    "unsloth_lora_mlp",
    "unsloth_lora_qkv",
    "unsloth_lora_o",
    "unsloth_rms_norm",
    "unsloth_rope",
)


CROSS_ENTROPY_PATCHES = (
    "cut_cross_entropy",
    "chunked_cross_entropy",
    "liger_cross_entropy",
    "liger_fused_linear_cross_entropy",
)


# What check_mistral_common_incompatible_options refuses with the mistral-common tokenizer, and its words.
MISTRAL_COMMON_REFUSES = {
    "added_tokens_overrides": "added_tokens_overrides is not supported with mistral-common tokenizer",
    "special_tokens": "special_tokens override is not supported with mistral-common tokenizer",
    "tokens": "tokens override is not supported with mistral-common tokenizer",
    "chat_template": "Setting chat_template is not supported with mistral-common tokenizer",
    "processor_kwargs": "processor_kwargs is not supported with mistral-common tokenizer",
}


MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::matmul", "aten::bmm")


def _with_mistral_common(key: str) -> Callable[[AxolotlConfig], Any]:
    """The condition "`key` is set together with the mistral-common tokenizer"."""
    return lambda c: c["tokenizer_use_mistral_common"] and c[key]


def _not_fsdp2(c: AxolotlConfig) -> bool:
    """FSDP in use, but not version 2 (OptimizationValidationMixin._resolve_fsdp_version)."""
    return c.uses_fsdp and str(c.fsdp_version) != "2"


def _number(value: Any) -> float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _eval_strategy(c: AxolotlConfig) -> Any:
    """eval_strategy after check_eval_strategy, which takes it from the older evaluation_strategy."""
    return c["eval_strategy"] if c["eval_strategy"] is not None else c["evaluation_strategy"]


def _eval_sample_packing(c: AxolotlConfig) -> Any:
    """eval_sample_packing after check_eval_packing, which turns it on with sample_packing."""
    if c["eval_sample_packing"] is None and c["sample_packing"] and not c["eval_table_size"]:
        return True
    return c["eval_sample_packing"]


def _grpo_generation_batch(c: AxolotlConfig) -> dict[str, Any] | None:
    """check_grpo_batch_size_divisibility's figures, or None when it has nothing to check."""
    trl = c.section("trl")
    generations = trl.get("num_generations")
    if c["rl"] != "grpo" or generations is None:
        return None
    if trl.get("generation_batch_size") is not None:
        batch, source = int(trl["generation_batch_size"]), "trl.generation_batch_size"
    else:
        micro, accumulation = c["micro_batch_size"] or 1, c["gradient_accumulation_steps"] or 1
        batch = int(micro) * int(accumulation)
        source = f"micro_batch_size ({micro}) * gradient_accumulation_steps ({accumulation})"
    hint = ""
    if trl.get("generation_batch_size") is None and generations:
        micro = int(c["micro_batch_size"] or 1)
        lcm = generations * micro // math.gcd(generations, micro)
        hint = (
            f" Smallest fix: set `gradient_accumulation_steps: {lcm // micro}` (so micro_batch_size * GA = "
            f"{lcm} is a multiple of {generations})."
        )
    world = c.gpus or c["world_size"] or 1
    return {"generations": generations, "batch": batch, "source": source, "hint": hint, "world": world}


def _grpo_indivisible(c: AxolotlConfig) -> dict[str, Any] | None:
    figures = _grpo_generation_batch(c)
    if figures and figures["generations"] >= 2 and figures["batch"] % figures["generations"]:
        return figures
    return None


def _grpo_too_few_per_rank(c: AxolotlConfig) -> dict[str, Any] | None:
    figures = _grpo_generation_batch(c)
    if not figures or figures["generations"] < 2 or figures["batch"] % figures["generations"]:
        return None
    needed = figures["generations"] * figures["world"]
    return {**figures, "needed": needed} if figures["world"] > 1 and figures["batch"] < needed else None


def _polora_untrained(c: AxolotlConfig) -> dict[str, Any] | None:
    keys = (
        "lora_modules_to_save",
        "unfrozen_parameters",
        "peft_use_dora",
        "peft_trainable_token_indices",
        "lisa_step_interval",
        "reward_model",
        "process_reward_model",
    )
    found = [key for key in keys if c[key]]
    return {"found": found} if c["optimizer"] == "polora" and found else None


def _polora_ignored(c: AxolotlConfig) -> dict[str, Any] | None:
    found = [
        key for key in ("loraplus_lr_ratio", "lr_groups", "embedding_lr", "embedding_lr_scale") if c[key]
    ]
    return {"found": found} if c["optimizer"] == "polora" and found else None


def _cross_entropy_patches(c: AxolotlConfig) -> dict[str, Any] | None:
    enabled = [key for key in CROSS_ENTROPY_PATCHES if c[key]]
    return {"count": len(enabled), "names": ", ".join(enabled)} if len(enabled) > 1 else None


def _unsloth(c: AxolotlConfig) -> dict[str, Any] | None:
    found = [key for key in UNSLOTH_KEYS if c[key]]
    if not found:
        return None
    return {"names": "`, `".join(found), "have": "has" if len(found) == 1 else "have"}


def _selective_checkpointing(c: AxolotlConfig) -> dict[str, Any] | None:
    """check_selective_checkpointing's settings when it is on (`true` means the defaults)."""
    value = c["selective_checkpointing"]
    if not value:
        return None
    return value if isinstance(value, dict) else {"save": ["attention"]}


def _matmul_saves(c: AxolotlConfig) -> dict[str, Any] | None:
    settings = _selective_checkpointing(c)
    if not settings or not c["adapter"] or not c["gradient_checkpointing"] or c.use_reentrant:
        return None
    if c["activation_offloading"] and c["activation_offloading"] != "hidden_states":
        return None
    saves = settings.get("save", ["attention"])
    bad = [spec for spec in saves if spec != "attention" and any(spec in op for op in MATMUL_OPS)]
    return {"bad": bad} if bad else None


def _neftune_alpha(c: AxolotlConfig) -> Any:
    """neftune_noise_alpha after check_neftune, which moves the deprecated noisy_embedding_alpha there."""
    return c["neftune_noise_alpha"] if c["neftune_noise_alpha"] else c["noisy_embedding_alpha"]


def _context_parallel(c: AxolotlConfig) -> int:
    size = c["context_parallel_size"] or c["sequence_parallel_degree"] or 1
    return size if not c["use_glm_dsa_kernels"] else 1


def _dpo_lengths(c: AxolotlConfig) -> dict[str, Any] | None:
    types, weights = c["dpo_loss_type"], c["dpo_loss_weights"]
    if c["rl"] != "dpo" or types is None or weights is None or len(types) == len(weights):
        return None
    return {"losses": len(types), "weights": len(weights)}


def _dpo_only(c: AxolotlConfig) -> dict[str, Any] | None:
    types, weights = c["dpo_loss_type"], c["dpo_loss_weights"]
    if c["rl"] == "dpo" or (types is None and weights is None):
        return None
    return {"rl": repr(c["rl"]), "types": repr(types), "weights": repr(weights)}


def _relora_adapter(c: AxolotlConfig) -> bool:
    """Whether the adapter supports ReLoRA: lora, qlora, or a plugin's that says so (MoRA's `mora`)."""
    return c.lora or (c["adapter"] == "mora" and c.lists("axolotl.integrations.mora"))


def _sharegpt(entry: AxolotlConfig) -> bool:
    return isinstance(entry["type"], str) and entry["type"].startswith("sharegpt")


DATASETS = (
    Refusal(
        "deprecate_sharegpt_datasets",
        ("type",),
        "`type: sharegpt.*` is deprecated. Please use `type: chat_template` instead.",
        _sharegpt,
        per_dataset=True,
    ),
    Refusal(
        "check_deprecated_unsloth_fields",
        UNSLOTH_KEYS,
        "`{names}` {have} been removed. Please use `lora_mlp_kernel`, `lora_qkv_kernel`, `lora_o_kernel` "
        "instead. See: https://docs.axolotl.ai/docs/lora_optims.html",
        _unsloth,
    ),
    Refusal(
        "check_dataset_or_pretraining_dataset",
        ("datasets", "pretraining_dataset"),
        "either datasets or pretraining_dataset is required",
        lambda c: c["datasets"] is None and c["pretraining_dataset"] is None,
    ),
    Refusal(
        "check_push_ds_auth",
        ("push_dataset_to_hub", "hf_use_auth_token"),
        "Require cfg.hf_use_auth_token to be True for push_dataset_to_hub",
        lambda c: c["push_dataset_to_hub"] and c["hf_use_auth_token"] is not True,
    ),
    Refusal(
        "check_val_w_test_datasets",
        ("val_set_size", "test_datasets"),
        "non-zero val_set_size should not be used with test_datasets configuration",
        given("test_datasets", "val_set_size"),
    ),
    Refusal(
        "check_eval_packing",
        ("eval_table_size", "sample_packing", "eval_sample_packing"),
        "eval_table_size and eval_sample_packing are not supported together with sample_packing. Please set "
        "'eval_sample_packing' to false.",
        lambda c: c["sample_packing"] and c["eval_table_size"] and c["eval_sample_packing"] is not False,
    ),
)


ATTENTION = (
    Refusal(
        "check_scaling_softmax_requires_flex",
        ("scaling_softmax", "attn_implementation"),
        "scaling_softmax requires flex attention. Add `attn_implementation: flex_attention` to your config.",
        lambda c: c["scaling_softmax"] and c.attn_implementation != "flex_attention",
    ),
)


TRAINING = (
    Refusal(
        "check_batch_size_fields",
        ("batch_size", "micro_batch_size", "gradient_accumulation_steps"),
        "At least two of micro_batch_size, gradient_accumulation_steps, batch_size must be set",
        lambda c: c["batch_size"] and not (c["micro_batch_size"] or c["gradient_accumulation_steps"]),
    ),
    Refusal(
        "check_gas_bsz",
        ("batch_size", "gradient_accumulation_steps"),
        "please set only one of gradient_accumulation_steps or batch_size",
        given("gradient_accumulation_steps", "batch_size"),
    ),
    Refusal(
        "check_warmup",
        ("warmup_ratio", "warmup_steps"),
        "warmup_steps and warmup_ratio are mutually exclusive",
        given("warmup_steps", "warmup_ratio"),
    ),
    Refusal(
        "check_saves",
        ("save_strategy", "save_steps"),
        "save_strategy and save_steps mismatch. Please set save_strategy to 'steps' or remove save_steps.",
        lambda c: c["save_strategy"] and c["save_steps"] and c["save_strategy"] != "steps",
    ),
    Refusal(
        "check_saves",
        ("saves_per_epoch", "save_steps"),
        "save_steps and saves_per_epoch are mutually exclusive and cannot be used together.",
        given("saves_per_epoch", "save_steps"),
    ),
    Refusal(
        "check_evals",
        ("eval_strategy", "eval_steps"),
        "eval_strategy and eval_steps mismatch. Please set eval_strategy to 'steps' or remove eval_steps.",
        lambda c: _eval_strategy(c) and c["eval_steps"] and _eval_strategy(c) != "steps",
    ),
    Refusal(
        "check_evals",
        ("val_set_size", "eval_steps", "eval_strategy"),
        "eval_steps and eval_strategy are not supported with val_set_size == 0",
        lambda c: (
            c["val_set_size"] == 0
            and (c["eval_steps"] or _eval_strategy(c))
            and not c["test_datasets"]
            and not c["do_bench_eval"]  # check_test_datasets_bench adds a test dataset for the bench
            and _eval_strategy(c) != "no"
        ),
    ),
    Refusal(
        "check_evals",
        ("evals_per_epoch", "eval_steps"),
        "eval_steps and evals_per_epoch are mutually exclusive and cannot be used together.",
        given("evals_per_epoch", "eval_steps"),
    ),
    Refusal(
        "check_evals",
        ("eval_strategy", "evals_per_epoch"),
        "eval_strategy must be empty or set to `steps` when used with evals_per_epoch.",
        lambda c: c["evals_per_epoch"] and _eval_strategy(c) and _eval_strategy(c) != "steps",
    ),
    Refusal(
        "check_evals",
        ("do_bench_eval",),
        "do_bench_eval requires evals_per_epoch or eval_steps to be set.",
        lambda c: c["do_bench_eval"] and not (c["evals_per_epoch"] or c["eval_steps"]),
    ),
    Refusal(
        "check_neftune",
        ("noisy_embedding_alpha", "neftune_noise_alpha"),
        "noisy_embedding_alpha is deprecated, use neftune_noise_alpha; both are set, please remove the "
        "deprecated noisy_embedding_alpha setting",
        given("noisy_embedding_alpha", "neftune_noise_alpha"),
    ),
    Refusal(
        "check_multipack_buffer_size",
        ("pretrain_multipack_buffer_size", "streaming_multipack_buffer_size"),
        "pretrain_multipack_buffer_size is deprecated, use streaming_multipack_buffer_size; both are set, "
        "please remove the deprecated pretrain_multipack_buffer_size setting",
        given("pretrain_multipack_buffer_size", "streaming_multipack_buffer_size"),
    ),
    Refusal(
        "check_fp8_config",
        ("fp8_config", "fp8"),
        "`fp8_config` requires `fp8: true`; set `fp8: true` or remove `fp8_config`.",
        lambda c: c["fp8_config"] is not None and not c["fp8"],
    ),
    Refusal(
        "check_fp8_config",
        ("fp8_enable_fsdp_float8_all_gather", "fp8_config"),
        "`fp8_enable_fsdp_float8_all_gather` only supports the tensorwise `fp8_config.recipe`; disable it when "
        "using rowwise scaling.",
        lambda c: (
            c["fp8_enable_fsdp_float8_all_gather"]
            and c.section("fp8_config").get("recipe", "tensorwise") != "tensorwise"
        ),
    ),
    Refusal(
        "check_fp8_config",
        ("fp8_enable_fsdp_float8_all_gather", "fsdp_version"),
        "fp8_enable_fsdp_float8_all_gather requires FSDP2 (fsdp_version: 2) to be used.",
        # Read before check_fsdp_version_in_fsdp_config copies the version out of fsdp_config.
        lambda c: c["fp8_enable_fsdp_float8_all_gather"] and c["fsdp_version"] != 2,
    ),
    Refusal(
        "check_use_reentrant_mismatch",
        ("gradient_checkpointing_kwargs", "unfrozen_parameters"),
        "`use_reentrant` must be false when used with partially frozen model.",
        lambda c: c["unfrozen_parameters"] and c.use_reentrant is True,
    ),
    Refusal(
        "check_causal_lm_evals",
        ("do_causal_lm_eval", "eval_sample_packing"),
        "do_causal_lm_eval is enabled, eval_sample_packing must be set to False",
        lambda c: c["do_causal_lm_eval"] and _eval_sample_packing(c),
    ),
    Refusal(
        "check_causal_lm_evals",
        ("eval_causal_lm_metrics",),
        "eval_causal_lm_metrics must be a list",
        lambda c: c["eval_causal_lm_metrics"] and not isinstance(c["eval_causal_lm_metrics"], list),
    ),
    Refusal(
        "check_causal_lm_evals",
        ("eval_causal_lm_metrics",),
        "eval_causal_lm_metrics must be one of {{" + ", ".join(repr(m) for m in CAUSAL_LM_METRICS) + "}}",
        lambda c: (
            isinstance(c["eval_causal_lm_metrics"], list)
            and set(c["eval_causal_lm_metrics"]) - set(CAUSAL_LM_METRICS)
        ),
    ),
    *(
        Refusal(
            "check_mistral_common_incompatible_options",
            (key, "tokenizer_use_mistral_common"),
            says,
            _with_mistral_common(key),
        )
        for key, says in MISTRAL_COMMON_REFUSES.items()
    ),
    Refusal(
        "pretrain_with_tps",
        ("include_tokens_per_second", "pretraining_dataset"),
        "pretraining_dataset and include_tokens_per_second cannot be used together.",
        given("pretraining_dataset", "include_tokens_per_second"),
    ),
)


LORA = (
    Refusal(
        "check_lr_groups",
        ("lr_groups", "loraplus_lr_ratio"),
        "lr_groups and loraplus_lr_ratio cannot be used together.",
        given("lr_groups", "loraplus_lr_ratio"),
    ),
    Refusal(
        "check_frozen",
        ("unfrozen_parameters", "peft_layers_to_transform"),
        "`unfrozen_parameters` used with `peft_layers_to_transform` can have unexpected behavior.",
        given("adapter", "peft_layers_to_transform", "unfrozen_parameters"),
    ),
    Refusal(
        "check_peft_layers_pattern",
        ("peft_layers_pattern", "peft_layers_to_transform"),
        "peft_layers_pattern requires peft_layers_to_transform to be set",
        lambda c: c["peft_layers_pattern"] and not c["peft_layers_to_transform"],
    ),
    Refusal(
        "check_fused_lora",
        ("flash_attn_fuse_mlp", "adapter"),
        "Fused modules are not supported with LoRA/QLoRA",
        lambda c: c.lora and c["flash_attn_fuse_mlp"],
    ),
    Refusal(
        "check_onebitllms_lora",
        ("use_onebitllms", "adapter"),
        "LoRA/QLoRA is not supported with use_onebitllms",
        lambda c: c["use_onebitllms"] and c.lora,
    ),
    Refusal(
        "check_lora_kernels_8bit",
        ("lora_mlp_kernel", "lora_qkv_kernel", "lora_o_kernel", "load_in_8bit"),
        "lora_mlp_kernel, lora_qkv_kernel, and lora_o_kernel are not compatible with 8-bit LoRA a the moment.",
        lambda c: c.lora_kernels and c["adapter"] == "lora" and c["load_in_8bit"],
    ),
    Refusal(
        "check_lora_kernels_trust_remote_code",
        ("lora_mlp_kernel", "lora_qkv_kernel", "lora_o_kernel", "trust_remote_code"),
        "lora_mlp_kernel, lora_qkv_kernel, and lora_o_kernel are not compatible with trust_remote_code. Please "
        "disable trust_remote_code or explicitly set lora_*_kernel to false.",
        lambda c: c.lora_kernels and c["trust_remote_code"],
    ),
)


RL = (
    Refusal(
        "check_sample_packing_w_rl",
        ("sample_packing", "rl"),
        "`sample_packing: true` does not work with RLHF training",
        given("sample_packing", "rl"),
    ),
    Refusal(
        "check_kto_config",
        ("sample_packing", "eval_sample_packing", "rl"),
        "sample_packing is not supported with kto",
        lambda c: c["rl"] == "kto" and (c["sample_packing"] or c["eval_sample_packing"]),
    ),
    Refusal(
        "check_kto_config",
        ("remove_unused_columns", "rl"),
        "Set `remove_unused_columns: False` when using kto",
        lambda c: c["rl"] == "kto" and c["remove_unused_columns"] is not False,
    ),
    Refusal(
        "check_grpo_liger_sequence_parallel",
        ("context_parallel_size", "trl.use_liger_loss"),
        "GRPO + SP + Liger not currently supported",
        lambda c: (
            c["rl"] == "grpo"
            and c.section("trl").get("use_liger_loss")
            and (c["context_parallel_size"] or 1) > 1
        ),
    ),
    Refusal(
        "check_rl_config_gradient_checkpointing",
        ("gradient_checkpointing_kwargs", "rl"),
        "The `use_reentrant: True` implementation of gradient checkpointing is not supported for distributed "
        "RL training with QLoRA. Please set `use_reentrant: False` in `gradient_checkpointing_kwargs`.",
        lambda c: (
            c["rl"]
            and c["gradient_checkpointing"]
            and c.use_reentrant
            and c["load_in_4bit"]
            and c["adapter"] == "qlora"
            and (c.gpus or 1) > 1
        ),
    ),
    Refusal(
        "check_gdpo",
        ("trl.multi_objective_aggregation", "rl"),
        "`multi_objective_aggregation` value set as `sum_then_normalize` => GRPO, but GDPO was selected",
        lambda c: (
            c["rl"] == "gdpo" and c.section("trl").get("multi_objective_aggregation") == "sum_then_normalize"
        ),
    ),
    Refusal(
        "check_dpo",
        ("dpo_loss_weights", "dpo_loss_type"),
        "`dpo_loss_weights` requires `dpo_loss_type` to be set",
        lambda c: c["rl"] == "dpo" and c["dpo_loss_weights"] is not None and c["dpo_loss_type"] is None,
    ),
    Refusal(
        "check_dpo",
        ("dpo_loss_weights", "dpo_loss_type"),
        "`dpo_loss_type` and `dpo_loss_weights` must be the same length, but got {losses} losses and "
        "{weights} weights",
        _dpo_lengths,
    ),
    Refusal(
        "check_dpo",
        ("dpo_loss_type", "dpo_loss_weights", "rl"),
        "`dpo_loss_type` and `dpo_loss_weights` are for DPO only,but got rl={rl}, dpo_loss_type={types} and "
        "dpo_loss_weights={weights}",
        _dpo_only,
    ),
    Refusal(
        "check_dpo_use_liger_kernel",
        ("dpo_use_liger_kernel", "dpo_loss_type", "rl"),
        "`dpo_use_liger_kernel` does not support the `ipo` loss type (liger-kernel's fused DPO loss cannot "
        "length-normalize the squared margin). Disable the liger kernel or use another loss.",
        lambda c: (
            c["dpo_use_liger_kernel"] and (c["rl"] == "ipo" or (c["dpo_loss_type"] or [None])[0] == "ipo")
        ),
    ),
    Refusal(
        "check_grpo_batch_size_divisibility",
        ("trl.num_generations",),
        "GRPO requires `trl.num_generations >= 2` (got {generations}). With num_generations=1, every group has "
        "zero advantage and the policy never updates.",
        lambda c: (figures := _grpo_generation_batch(c)) and figures["generations"] < 2 and figures,
    ),
    Refusal(
        "check_grpo_batch_size_divisibility",
        ("trl.num_generations", "trl.generation_batch_size", "gradient_accumulation_steps"),
        "GRPO: generation batch size must be divisible by `trl.num_generations`. Got effective_gbs={batch} "
        "(from {source}) and num_generations={generations}.{hint}",
        _grpo_indivisible,
    ),
    Refusal(
        "check_grpo_batch_size_divisibility",
        ("trl.num_generations", "gradient_accumulation_steps"),
        "GRPO with world_size={world} requires effective_gbs >= num_generations * world_size = {needed}, got "
        "{batch}. Increase gradient_accumulation_steps or micro_batch_size.",
        _grpo_too_few_per_rank,
    ),
)


OPTIMIZATION = (
    Refusal(
        "check_muon_deepspeed_fsdp",
        ("optimizer", "deepspeed"),
        "Muon optimizer is currently incompatible with DeepSpeed",
        lambda c: c["optimizer"] == "muon" and c["deepspeed"],
    ),
    Refusal(
        "check_muon_deepspeed_fsdp",
        ("optimizer", "fsdp_version"),
        "Muon optimizer is only compatible with FSDP2. Set fsdp_version: 2 to use Muon with FSDP.",
        lambda c: c["optimizer"] == "muon" and not c["deepspeed"] and _not_fsdp2(c),
    ),
    Refusal(
        "check_polora",
        ("optimizer", "adapter"),
        "polora only updates LoRA (A, B) factors and requires adapter: lora or qlora.",
        lambda c: c["optimizer"] == "polora" and not c.lora,
    ),
    Refusal(
        "check_polora",
        ("optimizer", "deepspeed", "tensor_parallel_size"),
        "polora is not compatible with DeepSpeed or tensor parallelism. Use single-GPU, DDP, or FSDP2.",
        lambda c: c["optimizer"] == "polora" and (c["deepspeed"] or (c["tensor_parallel_size"] or 1) > 1),
    ),
    Refusal(
        "check_polora",
        ("optimizer", "fsdp_version"),
        "polora requires FSDP2. Set fsdp_version: 2 to use polora with FSDP.",
        lambda c: c["optimizer"] == "polora" and _not_fsdp2(c),
    ),
    Refusal(
        "check_polora",
        ("optimizer",),
        "polora has no fallback optimizer, so the parameters added by {found} would never be trained. Remove "
        "them or pick a different optimizer.",
        _polora_untrained,
    ),
    Refusal(
        "check_polora",
        ("optimizer",),
        "polora sets its own per-factor step size, so {found} would be silently ignored. Remove them or pick a "
        "different optimizer.",
        _polora_ignored,
    ),
    Refusal(
        "check_polora",
        ("relora_steps", "optimizer"),
        "relora resets optimizer state through Optimizer.state, which polora does not use, so its momentum "
        "would survive every merge.",
        lambda c: c["optimizer"] == "polora" and c["relora_steps"],
    ),
    Refusal(
        "check_qgalore",
        ("optimizer", "adapter"),
        "q_galore_adamw8bit operates on full-precision parameters and is incompatible with "
        "adapter='{adapter}'. Remove the adapter setting or pick a different optimizer.",
        lambda c: c["optimizer"] == "q_galore_adamw8bit" and c["adapter"],
    ),
    Refusal(
        "check_qgalore",
        ("optimizer", "deepspeed"),
        "q_galore_adamw8bit is not yet validated with DeepSpeed. Use DDP or FSDP2 with use_orig_params=True.",
        lambda c: c["optimizer"] == "q_galore_adamw8bit" and c["deepspeed"],
    ),
    Refusal(
        "check_qgalore",
        ("optimizer", "fsdp_version"),
        "q_galore_adamw8bit requires FSDP2. Set fsdp_version: 2.",
        lambda c: c["optimizer"] == "q_galore_adamw8bit" and _not_fsdp2(c),
    ),
    Refusal(
        "check_qgalore",
        ("fsdp_config.use_orig_params", "optimizer"),
        "q_galore_adamw8bit requires fsdp_config.use_orig_params=True so that per-parameter projection state "
        "survives FSDP sharding.",
        lambda c: (
            c["optimizer"] == "q_galore_adamw8bit" and c.uses_fsdp and c.fsdp("use_orig_params") is not True
        ),
    ),
    Refusal(
        "check_flashoptim_deepspeed_fsdp",
        ("optimizer", "deepspeed"),
        "{optimizer} optimizer is incompatible with DeepSpeed. Flash optimizers only support DDP and FSDP2.",
        lambda c: str(c["optimizer"] or "").startswith("flash_") and c["deepspeed"],
    ),
    Refusal(
        "check_flashoptim_deepspeed_fsdp",
        ("optimizer", "fsdp_version"),
        "{optimizer} optimizer is only compatible with FSDP2. Set fsdp_version: 2 to use flash optimizers with "
        "FSDP.",
        lambda c: str(c["optimizer"] or "").startswith("flash_") and not c["deepspeed"] and _not_fsdp2(c),
    ),
    Refusal(
        "check_batch_flattening_fa",
        ("batch_flattening", "attn_implementation"),
        "batch_flattening requires a varlen-capable attention backend (e.g., attn_implementation: "
        "flash_attention_2).",
        lambda c: (
            c["batch_flattening"]
            and c["batch_flattening"] != "auto"
            and c.attention_backend not in PACKING_BACKENDS
        ),
    ),
    Refusal(
        "check_batch_flattening_fa",
        ("batch_flattening", "sample_packing"),
        "batch_flattening not compatible with sample_packing",
        lambda c: c["batch_flattening"] and c["batch_flattening"] != "auto" and c["sample_packing"],
    ),
    Refusal(
        "check_cross_entropy_conflicts",
        CROSS_ENTROPY_PATCHES,
        "Only one cross entropy optimization can be enabled at a time. Found {count} enabled: {names}. Please "
        "disable all but one.",
        _cross_entropy_patches,
    ),
    Refusal(
        "check_fsdp2_cpu_offload_pin_memory",
        ("fsdp_config.cpu_offload_pin_memory", "fsdp_version"),
        "FSDP1 does not support disabling cpu_offload_pin_memory, please set `fsdp_version` to 2",
        lambda c: c.fsdp("cpu_offload_pin_memory") is False and str(c.fsdp_version) != "2",
    ),
    Refusal(
        "check_fsdp2_cpu_offload_pin_memory",
        ("fsdp_config.cpu_offload_pin_memory", "fsdp_config.offload_params"),
        "disabling cpu_offload_pin_memory requires enabling offload_params",
        lambda c: (
            c.fsdp("cpu_offload_pin_memory") is False
            and str(c.fsdp_version) == "2"
            and not c.fsdp("offload_params")
        ),
    ),
    Refusal(
        "check_fsdp2_base_model_quant_rl",
        ("load_in_4bit", "load_in_8bit", "rl"),
        "FSDP2 does not support load_in_8bit or load_in_4bit with {rl}. Please use DeepSpeed or set "
        "`fsdp_version` to 1.",
        lambda c: c.fsdp_version == 2 and c["rl"] in ("dpo", "kto", "orpo", "ipo") and c.quantized,
    ),
    Refusal(
        "check_fsdp_offload_w_8bit_optimizer",
        ("optimizer", "fsdp_config.offload_params"),
        "FSDP Offload not compatible with {optimizer}",
        lambda c: (
            c["fsdp_config"]
            and "8bit" in str(c["optimizer"] or "")
            and c.fsdp("offload_params")
            and str(c.fsdp_version) != "2"
        ),
    ),
    Refusal(
        "check_fsdp2_w_8bit_optimizer",
        ("optimizer", "fsdp_version"),
        "FSDP2 not compatible with {optimizer}, use `adamw_torch_8bit` instead",
        lambda c: (
            c["fsdp_config"]
            and c["optimizer"] in ("adamw_8bit", "adamw_bnb_8bit")
            and str(c.fsdp_version) == "2"
        ),
    ),
    Refusal(
        "check_fsdp2_cpu_ram_efficient_loading_w_4bit",
        ("fsdp_config.cpu_ram_efficient_loading", "load_in_4bit"),
        "FSDP2 does not support `cpu_ram_efficient_loading` with load_in_4bit; the rank-0-only bitsandbytes "
        "quantization deadlocks the state dict scatter. Please set `fsdp_config.cpu_ram_efficient_loading` to "
        "false.",
        lambda c: (
            c["fsdp_config"]
            and str(c.fsdp_version) == "2"
            and c.fsdp("cpu_ram_efficient_loading")
            and c["load_in_4bit"]
        ),
    ),
    Refusal(
        "check_deepcompile",
        ("deepcompile", "deepspeed"),
        "DeepCompile is only supported with DeepSpeed",
        lambda c: c["deepcompile"] and not c["deepspeed"],
    ),
)


SYSTEM = (
    Refusal(
        "check_mem_mismatch",
        ("gpu_memory_limit", "max_memory"),
        "max_memory and gpu_memory_limit are mutually exclusive and cannot be used together.",
        given("max_memory", "gpu_memory_limit", any_value=True),
    ),
    Refusal(
        "check_fsdp_deepspeed",
        ("fsdp", "deepspeed"),
        "deepspeed and fsdp cannot be used together.",
        given("deepspeed", "fsdp"),
    ),
    Refusal(
        "check_model_quantization_config_vs_bnb",
        ("model_quantization_config", "load_in_4bit", "load_in_8bit"),
        "model_quantization_config and load_in_8bit or load_in_4bit cannot be used together.",
        lambda c: c["model_quantization_config"] and c.quantized,
    ),
)


CHAT_TEMPLATE = (
    Refusal(
        "check_chat_template_config",
        ("chat_template", "chat_template_jinja"),
        "chat_template_jinja is required when chat_template is set to 'jinja'. Please provide the Jinja template "
        "string in chat_template_jinja field.",
        lambda c: c["chat_template"] == "jinja" and not c["chat_template_jinja"],
    ),
)


PRETRAINING = (
    Refusal(
        "check_pretraining_w_max_steps",
        ("max_steps", "pretraining_dataset"),
        "max_steps must be set when using iterable pretraining_dataset, Trainer can't infer length and schedule "
        "optimizer/learning rate without it!",
        lambda c: c["pretraining_dataset"] and not c["max_steps"],
    ),
    Refusal(
        "check_pretraining_w_val_set_size",
        ("val_set_size", "pretraining_dataset"),
        "val_set_size is not supported with pretraining_dataset. Use test_datasets to specify evaluation datasets "
        "for pretraining.",
        given("pretraining_dataset", "val_set_size"),
    ),
    Refusal(
        "check_streaming_w_val_set_size",
        ("val_set_size", "streaming"),
        "val_set_size is not supported with streaming datasets. Use test_datasets to specify evaluation datasets "
        "when streaming is enabled.",
        given("streaming", "val_set_size"),
    ),
    Refusal(
        "check_streaming_w_max_steps",
        ("max_steps", "streaming"),
        "max_steps must be set when using streaming datasets. Trainer cannot infer dataset length for iterable "
        "datasets.",
        lambda c: c["streaming"] and not c["max_steps"],
    ),
    Refusal(
        "check_streaming_w_multiple_datasets",
        ("datasets", "streaming", "sample_packing"),
        "Sample packing with multiple streaming datasets is not yet supported",
        lambda c: (
            c["streaming"]
            and c["sample_packing"]
            and isinstance(c["datasets"], list)
            and len(c["datasets"]) > 1
        ),
    ),
)


MODEL_COMPATIBILITY = (
    Refusal(
        "check_falcon_fsdp",
        ("fsdp", "base_model"),
        "FSDP is not supported for falcon models",
        lambda c: "falcon" in str(c["base_model"] or "").lower() and c["fsdp"],
    ),
    Refusal(
        "check_mpt_checkpointing",
        ("gradient_checkpointing", "base_model"),
        "gradient_checkpointing is not supported for MPT models",
        lambda c: "mpt" in str(c["base_model"] or "").lower() and c["gradient_checkpointing"],
    ),
    Refusal(
        "check_activation_offloading_wo_gc",
        ("activation_offloading", "gradient_checkpointing"),
        "activation_offloading requires gradient_checkpointing",
        lambda c: c["activation_offloading"] and not c["gradient_checkpointing"],
    ),
    Refusal(
        "check_selective_checkpointing",
        ("selective_checkpointing", "gradient_checkpointing"),
        "selective_checkpointing requires gradient_checkpointing",
        lambda c: _selective_checkpointing(c) and not c["gradient_checkpointing"],
    ),
    Refusal(
        "check_selective_checkpointing",
        ("gradient_checkpointing_kwargs", "selective_checkpointing"),
        "selective_checkpointing requires non-reentrant checkpointing "
        "(gradient_checkpointing_kwargs.use_reentrant: false)",
        lambda c: _selective_checkpointing(c) and c["gradient_checkpointing"] and c.use_reentrant,
    ),
    Refusal(
        "check_selective_checkpointing",
        ("activation_offloading", "selective_checkpointing"),
        "selective_checkpointing is only compatible with activation_offloading: hidden_states (or false); the "
        "TRL offloader paths bypass HF gradient checkpointing",
        lambda c: (
            _selective_checkpointing(c)
            and c["gradient_checkpointing"]
            and not c.use_reentrant
            and c["activation_offloading"]
            and c["activation_offloading"] != "hidden_states"
        ),
    ),
    Refusal(
        "check_selective_checkpointing",
        ("selective_checkpointing", "adapter"),
        "selective_checkpointing.save entries {bad} match matmul ops, which cannot be saved when training with a "
        "LoRA/QLoRA adapter: PEFT mutates the base linear output in-place to add the adapter delta, which "
        "invalidates the cached tensor. Use save: [attention] or train without an adapter.",
        _matmul_saves,
    ),
    Refusal(
        "check_hidden_states_offloading",
        ("activation_offloading", "unfrozen_parameters"),
        "activation_offloading: hidden_states with reentrant checkpointing is incompatible with "
        "`unfrozen_parameters` (partially frozen model).",
        lambda c: (
            c["activation_offloading"] == "hidden_states" and c.use_reentrant and c["unfrozen_parameters"]
        ),
    ),
    Refusal(
        "check_better_transformers",
        ("flash_optimum", "bf16", "fp16"),
        "AMP is not supported with BetterTransformer",
        # bf16 defaults to "auto", which counts as set.
        lambda c: c["flash_optimum"] is True and (c["fp16"] or c["bf16"] or "bf16" not in c.document),
    ),
    Refusal(
        "check_gptq_w_revision",
        ("revision_of_model", "gptq"),
        "revision_of_model is not supported for GPTQ models. Please download the model from HuggingFace Hub "
        "manually for correct branch, point to its path, and remove revision_of_model from the config.",
        given("gptq", "revision_of_model"),
    ),
    Refusal(
        "check_gpt_oss_fsdp_loading",
        ("fsdp_config.cpu_ram_efficient_loading", "model_quantization_config"),
        "FSDP cpu_ram_efficient_loading is not supported for Mxfp4Config model quantization.",
        lambda c: (
            c["model_quantization_config"] == "Mxfp4Config" and c.fsdp("cpu_ram_efficient_loading") is True
        ),
    ),
)


COMPLEX = (
    Refusal(
        "validate_neftune_noise_alpha",
        ("neftune_noise_alpha", "noisy_embedding_alpha"),
        "neftune_noise_alpha must be > 0.0",
        lambda c: _number(_neftune_alpha(c)) is not None and _neftune_alpha(c) <= 0.0,
    ),
    Refusal(
        "check_simpo_warmup",
        ("warmup_ratio", "rl"),
        "warmup_ratio is not supported with the simpo trainer. Please use `warmup_steps` instead",
        lambda c: c["rl"] == "simpo" and c["warmup_ratio"],
    ),
    Refusal(
        "check_relora",
        ("relora", "jagged_restart_steps"),
        "jagged_restart_steps must be set to use ReLoRA",
        lambda c: c["relora"] and not c["jagged_restart_steps"],
    ),
    Refusal(
        "check_relora",
        ("adapter", "relora"),
        "cfg.adapter must support ReLoRA to use ReLoRA restart semantics",
        lambda c: c["relora"] and c["jagged_restart_steps"] and not _relora_adapter(c),
    ),
    Refusal(
        "check_relora",
        ("fsdp", "fsdp_config", "relora"),
        "fsdp not supported with ReLoRA",
        lambda c: c["relora"] and c["jagged_restart_steps"] and _relora_adapter(c) and c.uses_fsdp,
    ),
    Refusal(
        "check_relora",
        ("deepspeed", "relora"),
        "deepspeed not supported with ReLoRA",
        lambda c: c["relora"] and c["jagged_restart_steps"] and _relora_adapter(c) and c["deepspeed"],
    ),
    Refusal(
        "check_relora",
        ("lr_scheduler", "relora"),
        "ReLoRA is not compatible with the one_cycle scheduler",
        lambda c: (
            c["relora"]
            and c["jagged_restart_steps"]
            and _relora_adapter(c)
            and c["lr_scheduler"] == "one_cycle"
        ),
    ),
    Refusal(
        "check_relora",
        ("flash_attn_fuse_mlp", "relora"),
        "Fused modules are not supported with ReLoRA",
        lambda c: (
            c["relora"] and c["jagged_restart_steps"] and _relora_adapter(c) and c["flash_attn_fuse_mlp"]
        ),
    ),
    Refusal(
        "check_early_stopping",
        ("early_stopping_patience", "save_steps", "eval_steps"),
        "`early_stopping_patience` requires save_steps and eval_steps to be set. eval_steps should evenly divide "
        "save_steps.",
        lambda c: c["early_stopping_patience"] and not (c["save_steps"] and c["eval_steps"]),
    ),
    Refusal(
        "check_early_stopping",
        ("save_steps", "eval_steps", "early_stopping_patience"),
        "`early_stopping_patience` requires that eval_steps should evenly divide save_steps.",
        lambda c: (
            c["early_stopping_patience"]
            and c["save_steps"]
            and c["eval_steps"]
            and c["save_steps"] % c["eval_steps"] != 0
        ),
    ),
    Refusal(
        "check_context_parallel_size",
        ("context_parallel_size", "attn_implementation"),
        "context_parallel_size > 1 requires attn_implementation: flash_attention_2. Ring attention only supports "
        "the flash attention 2 backend.",
        lambda c: _context_parallel(c) > 1 and c.attention_backend != "flash_attention_2",
    ),
    Refusal(
        "check_context_parallel_size",
        ("micro_batch_size", "context_parallel_size", "sample_packing"),
        "micro_batch_size must be set to 1 when sample_packing is enabled due to a `ring-flash-attn` requirement",
        lambda c: (
            _context_parallel(c) > 1
            and c.attention_backend == "flash_attention_2"
            and c["sample_packing"]
            and (c["micro_batch_size"] or 1) > 1
        ),
    ),
)


EBFT = (
    Refusal(
        "check_ebft_config_required",
        ("rl", "ebft"),
        "`ebft` config section is required when `rl: ebft` is set. Add an `ebft:` section with at least "
        "`mode: structured` or `mode: strided`.",
        lambda c: c["rl"] == "ebft" and not c["ebft"],
    ),
    Refusal(
        "check_ebft_torch_compile",
        ("torch_compile", "gradient_checkpointing"),
        "EBFT strided mode: `torch_compile: true` with `gradient_checkpointing: true` causes CheckpointError "
        "(BlockMask metadata mismatch during recomputation). Remove `torch_compile` — the flex_attention kernel "
        "compiles itself internally.",
        lambda c: (
            c["rl"] == "ebft"
            and c["torch_compile"] is True
            and c.section("ebft").get("mode") == "strided"
            and c["gradient_checkpointing"]
        ),
    ),
    Refusal(
        "check_ebft_activation_offloading",
        ("activation_offloading", "attn_implementation"),
        "EBFT strided mode: `activation_offloading: true` is incompatible with `attn_implementation: "
        "flex_attention`. Activation offloading replaces gradient checkpointing with FSDP-style wrapping that "
        "conflicts with flex_attention's reentrant checkpoint requirement. Remove `activation_offloading` — the "
        "strided trainer uses micro-batched forward passes for memory efficiency instead.",
        lambda c: (
            c["rl"] == "ebft"
            and c.section("ebft").get("mode") == "strided"
            and c["activation_offloading"] is True
            and c.attn_implementation == "flex_attention"
        ),
    ),
)

REFUSALS = (
    DATASETS
    + ATTENTION
    + TRAINING
    + LORA
    + RL
    + OPTIMIZATION
    + SYSTEM
    + CHAT_TEMPLATE
    + PRETRAINING
    + MODEL_COMPATIBILITY
    + COMPLEX
    + EBFT
)
