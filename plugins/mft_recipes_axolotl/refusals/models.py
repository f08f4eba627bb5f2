"""The refusals of axolotl 0.19's other config models (axolotl/utils/schemas/): peft.py's LoraConfig, and
the nested models a config holds: a dataset entry (datasets.py, utils.py), fsdp_config (fsdp.py), the
processor and output settings (model.py), multimodal.py, the QAT/PTQ sections (quantization.py) and the
removed keys (deprecated.py). One `Refusal` each.
"""

from __future__ import annotations

from typing import Any

from mft_recipes_axolotl.refusals.rule import AxolotlConfig, Refusal, given

# The keys deprecated.py's validate_<key> refuses (DeprecationWarning), its words, and whether any value
# (even false) is refused or only a true one.
REMOVED_KEYS = {
    "max_packed_sequence_len": ("`max_packed_sequence_len` is no longer supported", False),
    "rope_scaling": (
        "`rope_scaling` is no longer supported, it should now be be a key under `model_config`",
        False,
    ),
    "dpo_use_logits_to_keep": (
        "`dpo_use_logits_to_keep` is no longer supported, it has been removed in TRL >= 0.29.0",
        True,
    ),
    "dpo_generate_during_eval": (
        "`dpo_generate_during_eval` is no longer supported, it has been removed in TRL >= 0.29.0",
        True,
    ),
    "dpo_norm_loss": (
        "`dpo_norm_loss` is no longer supported, due to breaking changes in TRL >= 0.29.0",
        True,
    ),
    "rpo_alpha": (
        "`rpo_alpha` has been deprecated in TRL >= 0.29.0, and now requires passing multiple loss types, which is "
        "not yet supported by Axolotl.",
        True,
    ),
    "s2_attention": ("`s2_attention` (shifted-sparse attention) is no longer supported.", False),
    "flash_attn_rms_norm": ("`flash_attn_rms_norm` is no longer supported.", False),
}


TORCHAO_DTYPES = ("int4", "int8", "float8_e4m3fn", "nvfp4", "mxfp4", "ternary")


TORCHAO_DTYPE_ALIASES = ("fp8", "float8")


# The trainers whose datasets are not SFT datasets (utils/config validate_config picks the model).
PREFERENCE_TRAINERS = ("dpo", "ipo", "simpo", "kto")


def _ao_dtype(section: str) -> Any:
    """validate_ao_dtype on the dtypes of the `qat` or `quantization` section."""

    def invalid(c: AxolotlConfig) -> dict[str, Any] | None:
        known = TORCHAO_DTYPES + TORCHAO_DTYPE_ALIASES
        for key in ("weight_dtype", "activation_dtype"):
            value = c.section(section).get(key)
            if value is not None and value not in known:
                return {"value": value, "known": [*TORCHAO_DTYPES, *TORCHAO_DTYPE_ALIASES]}
        return None

    return invalid


def _sft_dataset(entry: AxolotlConfig) -> bool:
    """Whether validate_config reads a dataset entry as an SFT dataset (not a preference or synthetic one)."""
    return (
        entry.parent is not None
        and entry.parent["rl"] not in PREFERENCE_TRAINERS
        and entry["type"] != "_synthetic"
    )


def _conflicting_mapping(field: str, name: str) -> Any:
    """handle_legacy_message_fields_logic: message_field_<name> against message_property_mappings."""

    def conflict(entry: AxolotlConfig) -> dict[str, Any] | None:
        mappings = entry.section("message_property_mappings")
        if not _sft_dataset(entry) or field not in entry.document or name not in mappings:
            return None
        if mappings[name] == entry[field]:
            return None
        return {"legacy": entry[field], "mapped": mappings[name]}

    return conflict


PEFT = (
    Refusal(
        "validate_adapter",
        ("load_in_4bit", "load_in_8bit", "adapter"),
        "load_in_8bit and load_in_4bit are not supported without setting an adapter for training.If you want to "
        "full finetune, please turn off load_in_8bit and load_in_4bit.",
        lambda c: not c["adapter"] and not c["inference"] and c.quantized,
    ),
    Refusal(
        "validate_adapter",
        ("adapter",),
        "Adapter '{adapter}' is not built in and was not registered by a plugin. Add the plugin that provides "
        "this adapter to `plugins:`.",
        # MoRA's plugin is the one in axolotl that registers an adapter (`mora`).
        lambda c: (
            c["adapter"]
            and c["adapter"] not in ("lora", "qlora", "llama-adapter")
            and not (c["adapter"] == "mora" and c.lists("axolotl.integrations.mora"))
        ),
    ),
    Refusal(
        "validate_qlora",
        ("load_in_8bit", "merge_lora"),
        "Can't merge qlora if loaded in 8bit",
        lambda c: c["adapter"] == "qlora" and c["merge_lora"] and c["load_in_8bit"],
    ),
    Refusal(
        "validate_qlora",
        ("gptq", "merge_lora"),
        "Can't merge qlora if gptq",
        lambda c: c["adapter"] == "qlora" and c["merge_lora"] and not c["load_in_8bit"] and c["gptq"],
    ),
    Refusal(
        "validate_qlora",
        ("load_in_4bit", "merge_lora"),
        "Can't merge qlora if loaded in 4bit",
        lambda c: (
            c["adapter"] == "qlora"
            and c["merge_lora"]
            and not c["load_in_8bit"]
            and not c["gptq"]
            and c["load_in_4bit"]
        ),
    ),
    Refusal(
        "validate_qlora",
        ("load_in_8bit", "adapter"),
        "Can't load qlora in 8bit",
        lambda c: c["adapter"] == "qlora" and not c["merge_lora"] and c["load_in_8bit"],
    ),
    Refusal(
        "validate_qlora",
        ("gptq", "adapter"),
        "Can't load qlora if gptq",
        lambda c: c["adapter"] == "qlora" and not c["merge_lora"] and not c["load_in_8bit"] and c["gptq"],
    ),
    Refusal(
        "validate_qlora",
        ("adapter", "load_in_4bit"),
        "Require cfg.load_in_4bit to be True for qlora",
        lambda c: (
            c["adapter"] == "qlora"
            and not c["merge_lora"]
            and not c["load_in_8bit"]
            and not c["gptq"]
            and not c["load_in_4bit"]
        ),
        code="qlora-without-4bit",
    ),
    Refusal(
        "validate_lora_target_parameters_dropout",
        ("lora_dropout", "lora_target_parameters"),
        "lora_dropout must be 0 when lora_target_parameters is set. PEFT's ParamWrapper does not support "
        "lora_dropout != 0.",
        lambda c: c["lora_target_parameters"] and c["lora_dropout"] and c["lora_dropout"] != 0.0,
    ),
)


# Validators of the nested models: a dataset entry, fsdp_config, the QAT/PTQ sections, the deprecated keys.
MODELS = (
    Refusal(
        "check_chat_template_config",
        ("chat_template", "chat_template_jinja"),
        "chat_template_jinja is required when chat_template is set to jinja",
        lambda entry: (
            _sft_dataset(entry) and entry["chat_template"] == "jinja" and not entry["chat_template_jinja"]
        ),
        per_dataset=True,
    ),
    Refusal(
        "handle_legacy_message_fields_logic",
        ("message_field_role", "message_property_mappings"),
        "Conflicting message role fields: message_field_role='{legacy}' conflicts with "
        "message_property_mappings.role='{mapped}'",
        _conflicting_mapping("message_field_role", "role"),
        per_dataset=True,
    ),
    Refusal(
        "handle_legacy_message_fields_logic",
        ("message_field_content", "message_property_mappings"),
        "Conflicting message content fields: message_field_content='{legacy}' conflicts with "
        "message_property_mappings.content='{mapped}'",
        _conflicting_mapping("message_field_content", "content"),
        per_dataset=True,
    ),
    Refusal(
        "validate_size_based_wrap",
        ("fsdp_config.auto_wrap_policy", "fsdp_config.min_num_params"),
        "fsdp_config.min_num_params is required when auto_wrap_policy is SIZE_BASED_WRAP",
        lambda c: c.fsdp("auto_wrap_policy") == "SIZE_BASED_WRAP" and c.fsdp("min_num_params") is None,
    ),
    Refusal(
        "reject_reserved_processor_kwargs",
        ("processor_kwargs",),
        "Do not set reserved keys {reserved} inside `processor_kwargs`; use the top-level `revision_of_model` / "
        "`trust_remote_code` config keys instead.",
        lambda c: (
            (reserved := sorted({"revision", "trust_remote_code"} & set(c.section("processor_kwargs"))))
            and {"reserved": reserved}
        ),
    ),
    Refusal(
        "validate_save_safetensors",
        ("save_safetensors",),
        "save_safetensors=False is not supported in Transformers V5. Transformers V5 always uses safetensors format "
        "for model serialization. This field is deprecated and will be removed in a future version.",
        lambda c: c["save_safetensors"] is False,
    ),
    Refusal(
        "convert_image_resize_algorithm",
        ("image_resize_algorithm",),
        "Invalid image resize algorithm: {algorithm}",
        lambda c: (
            isinstance(c["image_resize_algorithm"], str)
            and c["image_resize_algorithm"].lower() not in ("bilinear", "bicubic", "lanczos")
            and {"algorithm": c["image_resize_algorithm"].lower()}
        ),
    ),
    Refusal(
        "validate_ao_dtype",
        ("qat.weight_dtype", "qat.activation_dtype"),
        "Invalid dtype: '{value}'. Must be one of: {known}",
        _ao_dtype("qat"),
    ),
    Refusal(
        "validate_ao_dtype",
        ("quantization.weight_dtype", "quantization.activation_dtype"),
        "Invalid dtype: '{value}'. Must be one of: {known}",
        _ao_dtype("quantization"),
    ),
    *(
        Refusal(
            f"validate_{key}",
            (key,),
            says,
            given(key, any_value=any_value),
        )
        for key, (says, any_value) in REMOVED_KEYS.items()
    ),
)

REFUSALS = PEFT + MODELS
