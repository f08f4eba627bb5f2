"""The corpus on which the parity test compares axolotl's own validation with fast `validate`.

Three parts, each a `CorpusDocument` with the GPUs it is meant for (axolotl judges some settings against
the training machine's capabilities; `validate` gets the same as --gpus/--gpu):

- axolotl's published example configs for Mistral-family models and a few Llama/Qwen controls, copied
  unmodified from the pinned release's source distribution (tests/fixtures/axolotl-0.19.0/, see its
  MANIFEST.json and NOTICE). Relative paths in them resolve against that folder, as axolotl resolves them
  against the directory it is launched from;
- every axolotl recipe rendered with each variant of the truth tier (tests/truth/cases.py);
- mutations of both: a change to one document that makes axolotl refuse it, at least one for every refusal
  the axolotl plugin restates (plugins/mft_recipes_axolotl/refusals/), plus a
  few that axolotl accepts and `validate` refuses on purpose (the intended strictness).

Light on purpose (no axolotl import): the fast tier reads it to check the README's parity table.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import cache
from typing import Any

import yaml

from tests.truth.cases import REPO, VARIANTS, axolotl_recipes, overrides_for, render

EXAMPLES = REPO / "tests" / "fixtures" / "axolotl-0.19.0"
MANIFEST = json.loads((EXAMPLES / "MANIFEST.json").read_text(encoding="utf-8"))
# The GPUs axolotl's examples are meant for: one H100, or eight for the FSDP and DeepSpeed ones.
EXAMPLE_GPU = "h100-80gb"
DROP = object()  # a mutation's value that removes the key


@dataclass(frozen=True)
class CorpusDocument:
    """One config of the corpus: its name, its content, the GPUs it is meant for, and for published
    examples the file it was read from (relative to `EXAMPLES`)."""

    name: str
    data: dict[str, Any]
    gpus: int
    gpu: str
    file: str | None = None


def published_examples() -> list[CorpusDocument]:
    documents = []
    for path in sorted(
        name for name in MANIFEST["files"] if name.startswith("examples/") and name.endswith(("yml", "yaml"))
    ):
        data = yaml.safe_load((EXAMPLES / path).read_text(encoding="utf-8"))
        distributed = any(data.get(key) for key in ("fsdp", "fsdp_config", "deepspeed"))
        documents.append(CorpusDocument(path, data, 8 if distributed else 1, EXAMPLE_GPU, path))
    return documents


def rendered_recipes() -> list[CorpusDocument]:
    return [
        CorpusDocument(
            f"recipe {recipe.name} ({variant})",
            render(recipe, overrides_for(recipe, variant)),
            recipe.hardware.gpus,
            recipe.hardware.gpu,
        )
        for recipe in axolotl_recipes()
        for variant in VARIANTS
    ]


@dataclass(frozen=True)
class Mutation:
    """`changes` applied to the base document (`recipe NAME`, the recipe's defaults, or an example's path):
    a dotted key sets a key inside a mapping, the value DROP removes the key. `gpus`/`gpu` replace the
    base's."""

    base: str
    changes: dict[str, Any]
    gpus: int | None = None
    gpu: str | None = None

    def document(self, bases: dict[str, CorpusDocument]) -> CorpusDocument:
        base = bases[self.base]
        data = copy.deepcopy(base.data)
        for dotted, value in self.changes.items():
            *parents, key = dotted.split(".")
            target = data
            for parent in parents:
                target = target.setdefault(parent, {})
            if value is DROP:
                target.pop(key, None)
            else:
                target[key] = copy.deepcopy(value)
        shown = ", ".join(
            f"{key}={'(dropped)' if value is DROP else json.dumps(value)}"
            for key, value in self.changes.items()
        )
        return CorpusDocument(
            f"{self.base} + {shown}",
            data,
            self.gpus or base.gpus,
            self.gpu or base.gpu,
            base.file,
        )


LORA = "recipe mistral-7b-lora"
QLORA = "recipe mistral-7b-qlora"
FULL = "recipe mistral-7b-full"  # 8 GPUs, DeepSpeed ZeRO-3 inline
MOE = "recipe mixtral-moe"
MAGISTRAL = "examples/magistral/magistral-small-qlora.yaml"  # tokenizer_use_mistral_common, CCE plugin
MIXTRAL_EXAMPLE = "examples/mistral/mixtral/mixtral.yml"  # qlora, lora_target_linear, DeepSpeed file
FSDP1_QLORA = "examples/magistral/magistral-small-fsdp-qlora.yaml"

NO_PACKING = {"sample_packing": False}
EXPERT_TARGETS = {
    "lora_target_linear": DROP,
    "lora_target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "w1", "w2", "w3"],
    "lora_dropout": 0,
}
FSDP1 = {
    "fsdp": ["full_shard", "auto_wrap"],
    "fsdp_config": {"transformer_layer_cls_to_wrap": "MistralDecoderLayer"},
}
FSDP2 = {
    "fsdp_version": 2,
    "fsdp_config": {"reshard_after_forward": True, "transformer_layer_cls_to_wrap": "MistralDecoderLayer"},
}
NO_DEEPSPEED = {"deepspeed": DROP}
ZERO2 = {"deepspeed": {"zero_optimization": {"stage": 2}, "train_micro_batch_size_per_gpu": "auto"}}
PRETRAINING = {"datasets": DROP, "pretraining_dataset": [{"path": "corpus.jsonl", "type": "pretrain"}]}
NO_EVAL = {"val_set_size": 0, "evals_per_epoch": DROP}
RELORA = {"relora": True, "jagged_restart_steps": 100}
KERNELS = {"plugins": ["axolotl.integrations.kernels.KernelsPlugin"]}
LIGER = {"plugins": ["axolotl.integrations.liger.LigerPlugin"]}
SONIC_MERGE = {**KERNELS, "use_sonicmoe": True, "nvfp4_merge_aware": True}


def _mutations() -> list[Mutation]:
    m = Mutation
    return [
        # The two: the moe-experts-16bit advice applied to axolotl's own Mixtral example, and FSDP2
        # with bitsandbytes' 8-bit AdamW.
        m(MIXTRAL_EXAMPLE, {"quantize_moe_experts": True}),
        # ... and the same example with the whole advice applied, which axolotl accepts.
        m(MIXTRAL_EXAMPLE, {**EXPERT_TARGETS, "quantize_moe_experts": True}),
        m(FSDP1_QLORA, {"fsdp_version": 2, "optimizer": "adamw_bnb_8bit"}),
        # DatasetValidationMixin
        m(LORA, {"datasets": [{"path": "train.jsonl", "type": "sharegpt"}]}),
        m(LORA, {"unsloth_lora_mlp": True}),
        m(LORA, {"datasets": DROP}),
        m(LORA, {"push_dataset_to_hub": "me/prepared"}),
        m(LORA, {"test_datasets": [{"path": "test.jsonl", "type": "chat_template"}]}),
        m(LORA, {"eval_table_size": 5}),
        # AttentionValidationMixin
        m(LORA, {"scaling_softmax": True}),
        # TrainingValidationMixin
        m(LORA, {"micro_batch_size": DROP, "gradient_accumulation_steps": DROP, "batch_size": 16}),
        m(LORA, {"batch_size": 16}),
        m(LORA, {"warmup_steps": 10}),
        m(LORA, {"saves_per_epoch": DROP, "save_strategy": "epoch", "save_steps": 100}),
        m(LORA, {"save_steps": 100}),
        m(LORA, {"evals_per_epoch": DROP, "eval_strategy": "epoch", "eval_steps": 50}),
        m(LORA, {**NO_EVAL, "eval_steps": 50}),
        m(LORA, {"eval_steps": 50}),
        m(LORA, {"eval_strategy": "epoch"}),
        m(LORA, {"evals_per_epoch": DROP, "do_bench_eval": True}),
        m(LORA, {"noisy_embedding_alpha": 5, "neftune_noise_alpha": 5}),
        m(LORA, {"pretrain_multipack_buffer_size": 1000, "streaming_multipack_buffer_size": 1000}),
        m(LORA, {"fp8_config": {"recipe": "rowwise"}}),
        m(
            LORA,
            {"fp8": True, "fp8_config": {"recipe": "rowwise"}, "fp8_enable_fsdp_float8_all_gather": True},
        ),
        m(LORA, {"fp8": True, "fp8_enable_fsdp_float8_all_gather": True}),
        m(
            LORA,
            {
                "unfrozen_parameters": ["model.layers.0.*"],
                "gradient_checkpointing_kwargs": {"use_reentrant": True},
            },
        ),
        m(LORA, {"do_causal_lm_eval": True}),
        m(LORA, {"eval_causal_lm_metrics": "sacrebleu"}),
        m(LORA, {"eval_causal_lm_metrics": ["bleu"]}),
        m(MAGISTRAL, {"added_tokens_overrides": {1000: "<tool>"}}),
        m(MAGISTRAL, {"special_tokens": {"pad_token": "<pad>"}}),
        m(MAGISTRAL, {"tokens": ["<tool>"]}),
        m(MAGISTRAL, {"chat_template": "chatml"}),
        m(MAGISTRAL, {"processor_kwargs": {"use_fast": True}}),
        m(LORA, {**PRETRAINING, "include_tokens_per_second": True}),
        # LoRAValidationMixin
        m(
            LORA,
            {
                "lr_groups": [{"name": "attention", "modules": ["q_proj"], "lr": 1e-4}],
                "loraplus_lr_ratio": 16,
            },
        ),
        m(LORA, {"peft_layers_to_transform": [0, 1], "unfrozen_parameters": ["model.norm.*"]}),
        m(LORA, {"peft_layers_pattern": ["layers"]}),
        m(LORA, {"flash_attn_fuse_mlp": True}),
        m(LORA, {"use_onebitllms": True}),
        m(LORA, {"load_in_8bit": True, "lora_mlp_kernel": True}),
        m(LORA, {"trust_remote_code": True, "lora_qkv_kernel": True}),
        # RLValidationMixin
        m(LORA, {"rl": "dpo"}),
        m(LORA, {**NO_PACKING, "rl": "kto", "eval_sample_packing": True}),
        m(LORA, {**NO_PACKING, "rl": "kto"}),
        m(LORA, {**NO_PACKING, "rl": "grpo", "trl": {"use_liger_loss": True}, "context_parallel_size": 2}),
        m(
            QLORA,
            {**NO_PACKING, "rl": "dpo", "gradient_checkpointing_kwargs": {"use_reentrant": True}},
            gpus=2,
        ),
        m(LORA, {**NO_PACKING, "rl": "gdpo", "trl": {"multi_objective_aggregation": "sum_then_normalize"}}),
        m(LORA, {**NO_PACKING, "rl": "dpo", "dpo_loss_weights": [1.0]}),
        m(LORA, {**NO_PACKING, "rl": "dpo", "dpo_loss_type": ["sigmoid", "ipo"], "dpo_loss_weights": [1.0]}),
        m(LORA, {"dpo_loss_type": ["sigmoid"]}),
        m(LORA, {**NO_PACKING, "rl": "dpo", "dpo_use_liger_kernel": True, "dpo_loss_type": ["ipo"]}),
        m(LORA, {**NO_PACKING, "rl": "grpo", "trl": {"num_generations": 1}}),
        m(LORA, {**NO_PACKING, "rl": "grpo", "trl": {"num_generations": 3}}),
        m(LORA, {**NO_PACKING, "rl": "grpo", "trl": {"num_generations": 4}}, gpus=4),
        # OptimizationValidationMixin
        m(LORA, {**ZERO2, "optimizer": "muon"}),
        m(LORA, {**FSDP1, "optimizer": "muon"}),
        m(FULL, {"optimizer": "polora"}),
        m(LORA, {**ZERO2, "optimizer": "polora"}),
        m(LORA, {**FSDP1, "optimizer": "polora"}),
        m(LORA, {"optimizer": "polora", "lora_modules_to_save": ["embed_tokens"]}),
        m(LORA, {"optimizer": "polora", "loraplus_lr_ratio": 16}),
        m(LORA, {"optimizer": "polora", "relora_steps": 100}),
        m(LORA, {"optimizer": "q_galore_adamw8bit"}),
        m(FULL, {"optimizer": "q_galore_adamw8bit"}),
        m(FULL, {**NO_DEEPSPEED, **FSDP1, "optimizer": "q_galore_adamw8bit"}),
        m(FULL, {**NO_DEEPSPEED, **FSDP2, "optimizer": "q_galore_adamw8bit"}),
        m(FULL, {"optimizer": "flash_adamw"}),
        m(LORA, {**FSDP1, "optimizer": "flash_adamw"}),
        m(LORA, {**NO_PACKING, "batch_flattening": True, "attn_implementation": "sdpa"}),
        m(LORA, {"batch_flattening": True}),
        m(LORA, {**LIGER, "chunked_cross_entropy": True, "liger_fused_linear_cross_entropy": True}),
        m(
            FULL,
            {
                **NO_DEEPSPEED,
                **FSDP1,
                "fsdp_config.cpu_offload_pin_memory": False,
                "fsdp_config.offload_params": True,
            },
        ),
        m(FULL, {**NO_DEEPSPEED, **FSDP2, "fsdp_config.cpu_offload_pin_memory": False}),
        m(QLORA, {**NO_PACKING, **FSDP2, "rl": "dpo"}),
        m("examples/mistral/mistral-qlora-fsdp.yml", {"fsdp_config.fsdp_offload_params": True}),
        m(FSDP1_QLORA, {"fsdp_version": 2, "fsdp_config.cpu_ram_efficient_loading": True}),
        m(LORA, {"deepcompile": True}),
        # SystemValidationMixin
        m(LORA, {"max_memory": {"cpu": "64GiB"}, "gpu_memory_limit": "70GiB"}),
        m(FULL, {"fsdp": ["full_shard"]}),
        m(QLORA, {"model_quantization_config": "Mxfp4Config"}),
        # ChatTemplateValidationMixin
        m(LORA, {"chat_template": "jinja", "chat_template_jinja": DROP}),  # the recipe writes both
        # PretrainingValidationMixin
        m(LORA, {**PRETRAINING, "val_set_size": DROP, "evals_per_epoch": DROP}),
        m(LORA, {**PRETRAINING, "max_steps": 100}),
        m(LORA, {"streaming": True, "max_steps": 100}),
        m(LORA, {**NO_EVAL, "streaming": True}),
        m(
            LORA,
            {
                **NO_EVAL,
                "streaming": True,
                "max_steps": 100,
                "datasets": [
                    {"path": "a.jsonl", "type": "chat_template"},
                    {"path": "b.jsonl", "type": "chat_template"},
                ],
            },
        ),
        # ModelCompatibilityValidationMixin
        m(LORA, {**FSDP1, "base_model": "tiiuae/falcon-7b"}),
        m(LORA, {"base_model": "mosaicml/mpt-7b"}),
        m(LORA, {"activation_offloading": True, "gradient_checkpointing": False}),
        m(LORA, {"selective_checkpointing": True, "gradient_checkpointing": False}),
        m(LORA, {"selective_checkpointing": True, "gradient_checkpointing_kwargs": {"use_reentrant": True}}),
        m(LORA, {"selective_checkpointing": True, "activation_offloading": "legacy"}),
        m(LORA, {"selective_checkpointing": {"save": ["mm"]}}),
        m(
            LORA,
            {
                "activation_offloading": "hidden_states",
                "gradient_checkpointing_kwargs": {"use_reentrant": 1},
                "unfrozen_parameters": ["model.norm.*"],
            },
        ),
        m(LORA, {"flash_optimum": True}),
        m(LORA, {"gptq": True, "revision_of_model": "main"}),
        m(
            LORA,
            {"model_quantization_config": "Mxfp4Config", "fsdp_config": {"cpu_ram_efficient_loading": True}},
        ),
        # ComplexValidationMixin
        m(LORA, {"neftune_noise_alpha": -1}),
        m(LORA, {**NO_PACKING, "rl": "simpo"}),
        m(LORA, {"relora": True}),
        m(FULL, RELORA),
        m(LORA, {**RELORA, **FSDP1}),
        m(LORA, {**RELORA, **ZERO2}),
        m(LORA, {**RELORA, "lr_scheduler": "one_cycle"}),
        m(LORA, {**RELORA, "flash_attn_fuse_mlp": True}),
        m(LORA, {"early_stopping_patience": 3}),
        m(
            LORA,
            {
                "early_stopping_patience": 3,
                "saves_per_epoch": DROP,
                "evals_per_epoch": DROP,
                "save_steps": 100,
                "eval_steps": 30,
            },
        ),
        m(LORA, {"context_parallel_size": 2, "attn_implementation": "sdpa"}),
        m(LORA, {"context_parallel_size": 2}),
        # EBFTValidationMixin
        m(LORA, {**NO_PACKING, "rl": "ebft"}),
        m(LORA, {**NO_PACKING, "rl": "ebft", "ebft": {"mode": "strided"}, "torch_compile": True}),
        m(
            LORA,
            {
                **NO_PACKING,
                "rl": "ebft",
                "ebft": {"mode": "strided"},
                "activation_offloading": True,
                "attn_implementation": "flex_attention",
            },
        ),
        # AxolotlInputConfig (config.py)
        m(LORA, {"gemma4_hybrid_attn_impl": True, "attn_implementation": "sdpa"}),
        m(LORA, {"flash_attention": True}),
        m(LORA, {"large_head_attention": "fast"}),
        m(LORA, {"attn_implementation": 2}),
        m(LORA, {"attn_implementation": "flash"}),
        m(LORA, {"attn_implementation": "flashy"}),
        m(LORA, {"torch_compile": True, "torch_compile_options": {"max_autotune": True}}),
        m(LORA, {"torch_compile_options": {"shape_padding": True}}),
        m(LORA, {"fp32_norms": True}),
        m(LORA, {**FSDP1, "fp32_norms": True}),
        m(LORA, {"attn_implementation": "flash_attention_torch"}),
        m(QLORA, {**FSDP1, "ple_cpu_offload": True}),
        m(QLORA, {**ZERO2, "ple_cpu_offload": True}),
        m(LORA, {"ple_cpu_offload": True}),
        m(LORA, {"saves_per_epoch": DROP, "save_strategy": "best"}),
        m(LORA, {"lora_target_modules": ["q_proj", "v_proj(", "o_proj"]}),
        # AxolotlConfigWCapabilities: the GPU's capabilities
        m(LORA, {"fp8": True}, gpu="a100-80gb"),
        m(LORA, {"attn_implementation": "sage"}, gpu="b200-180gb"),
        m(LORA, {"attn_implementation": "fp8"}, gpu="a100-80gb"),
        m(LORA, {**FSDP1, "lora_mlp_kernel": True}, gpus=2),
        m(FULL, {"quantize_moe_experts": True}),
        m(LORA, {"quantize_moe_experts": True}),
        m(LORA, {"beta": 0.1, "trl": {"beta": 0.2}}),
        m(LORA, {"qat": {"weight_dtype": "int8"}, "peft": {"layer_replication": [[0, 4]]}}),
        m(LORA, {"qat": {"weight_dtype": "int8"}, "load_in_8bit": True}),
        m(QLORA, {"qat": {"weight_dtype": "int8"}}),
        m(LORA, {"qat": {"weight_dtype": "ternary", "activation_dtype": "int4"}}),
        m(LORA, {"dataset_exact_deduplication": True, "streaming": True}),
        m(LORA, {"dataset_exact_deduplication": True, "skip_prepare_dataset": True}),
        # peft.py
        m(FULL, {"load_in_4bit": True}),
        m(LORA, {"adapter": "dora"}),
        m(QLORA, {"merge_lora": True, "load_in_8bit": True}),
        m(QLORA, {"merge_lora": True, "gptq": True, "load_in_4bit": False}),
        m(QLORA, {"merge_lora": True}),
        m(QLORA, {"load_in_8bit": True, "load_in_4bit": False}),
        m(QLORA, {"gptq": True, "load_in_4bit": False}),
        m(QLORA, {"load_in_4bit": False}),
        m(MOE, {"lora_target_parameters": ["mlp.experts.gate_up_proj"], "lora_dropout": 0.05}),
        # Intended strictness: axolotl accepts these, peft stops at the first step.
        m(MOE, {"lora_dropout": 0.05}),
        # Intended strictness: axolotl accepts these, and stops at data loading: the base model's tokenizer
        # has no chat template; the Mistral chat type of v3 on Mixtral 8x7B's v1 tokenizer.
        m(
            LORA,
            {
                "datasets": [{"path": "t.jsonl", "type": "chat_template"}],
                "chat_template": DROP,
                "chat_template_jinja": DROP,
            },
        ),
        m(MOE, {"datasets": [{"path": "train.jsonl", "type": "mft_recipes_axolotl.mistral_chat.v3"}]}),
        # The nested models: a dataset entry, fsdp_config, processor, multimodal, QAT/PTQ, deprecated keys.
        m(LORA, {"datasets": [{"path": "train.jsonl", "type": "chat_template", "chat_template": "jinja"}]}),
        m(
            LORA,
            {
                "datasets": [
                    {
                        "path": "train.jsonl",
                        "type": "chat_template",
                        "message_field_role": "from",
                        "message_property_mappings": {"role": "role"},
                    }
                ]
            },
        ),
        m(
            LORA,
            {
                "datasets": [
                    {
                        "path": "train.jsonl",
                        "type": "chat_template",
                        "message_field_content": "value",
                        "message_property_mappings": {"content": "content"},
                    }
                ]
            },
        ),
        m(FULL, {**NO_DEEPSPEED, **FSDP2, "fsdp_config.auto_wrap_policy": "SIZE_BASED_WRAP"}),
        m(LORA, {"processor_kwargs": {"revision": "main"}}),
        m(LORA, {"save_safetensors": False}),
        m(LORA, {"image_resize_algorithm": "nearest"}),
        m(LORA, {"qat": {"weight_dtype": "int3"}}),
        m(LORA, {"quantization": {"weight_dtype": "int3"}}),
        m(LORA, {"max_packed_sequence_len": 4096}),
        m(LORA, {"rope_scaling": {"type": "linear", "factor": 2.0}}),
        m(LORA, {"dpo_use_logits_to_keep": True}),
        m(LORA, {"dpo_generate_during_eval": True}),
        m(LORA, {"dpo_norm_loss": True}),
        m(LORA, {"rpo_alpha": 0.5}),
        m(LORA, {"s2_attention": True}),
        m(LORA, {"flash_attn_rms_norm": True}),
        # Plugins' argument models: the kernels plugin
        m(LORA, {**KERNELS, "nvfp4_merge_aware_start_step": 10}),
        m(LORA, {**KERNELS, "nvfp4_merge_aware": True}),
        m(QLORA, SONIC_MERGE),
        m(LORA, {**SONIC_MERGE, "lora_mlp_kernel": True}),
        m(LORA, {**SONIC_MERGE, "nvfp4_merge_aware_start_step": -1}),
        m(LORA, {**KERNELS, "dsv4_fp4_grouped_mode": "fp8"}),
        m(LORA, {**KERNELS, "dsv4_fp4_grouped_mode": "int4"}),
        m(LORA, {**KERNELS, "dsv4_fp8_nonexpert_mode": "int8"}),
        m(LORA, {**KERNELS, "moe_dequant_chunk_size": 0}),
        m(LORA, {**KERNELS, "expert_backend": "fast"}),
        m(LORA, {**KERNELS, "expert_backend": "sonicmoe", "use_scattermoe": True}),
        m(LORA, {**KERNELS, "expert_backend": "scattermoe", "use_sonicmoe": True}),
        m(LORA, {**KERNELS, "moe_grouped_backend": "dequant"}),
        m(LORA, {**KERNELS, "moe_grouped_backend": "triton"}),
        m(LORA, {**KERNELS, "nonexpert_quantization": "int3"}),
        m(LORA, {**KERNELS, "use_scattermoe": True, "use_sonicmoe": True}),
        m(LORA, {**KERNELS, "use_dsv4_kernels": True}),
        # the Liger plugin
        m(LORA, {**LIGER, "liger_swiglu": True, "liger_glu_activation": True}),
        m(LORA, {**LIGER, "liger_glu_activation": True, "tiled_mlp": True}),
        m(LORA, {**LIGER, "liger_rms_norm": True, "tensor_parallel_size": 2}),
        m(LORA, {**LIGER, "liger_use_token_scaling": True}),
        m(LORA, {**LIGER, "liger_fused_linear_cross_entropy": True, "tensor_parallel_size": 2}),
        # the others
        m(MAGISTRAL, {"cut_cross_entropy": True, "bf16": False}),
        m(MAGISTRAL, {"chunked_cross_entropy": True}),
        m(
            LORA,
            {
                "plugins": ["axolotl.integrations.diffusion.DiffusionPlugin"],
                "diffusion": {"min_mask_ratio": 0.8, "max_mask_ratio": 0.2},
            },
        ),
        m(
            LORA,
            {
                "plugins": ["axolotl.integrations.expert_parallel.ExpertParallelPlugin"],
                "expert_parallel_size": 0,
            },
        ),
        m(
            LORA,
            {
                "plugins": ["axolotl.integrations.expert_parallel.ExpertParallelPlugin"],
                "expert_parallel_token_capacity": 0,
            },
        ),
        m(LORA, {"plugins": ["axolotl.integrations.nemo_gym.NemoGymPlugin"], "nemo_gym_enabled": True}),
        m(
            LORA,
            {
                "plugins": ["axolotl.integrations.nemo_gym.NemoGymPlugin"],
                "nemo_gym_enabled": True,
                "nemo_gym_config_paths": ["gym.yaml"],
            },
        ),
        m(
            LORA,
            {
                **FSDP1,
                "plugins": ["axolotl.integrations.spectrum.SpectrumPlugin"],
                "spectrum_model_name": "mistral-7b",
            },
        ),
        m(
            LORA,
            {
                "plugins": ["axolotl.integrations.swanlab.SwanLabPlugin"],
                "swanlab_project": "p",
                "swanlab_mode": "cloudy",
            },
        ),
        m(LORA, {"plugins": ["axolotl.integrations.swanlab.SwanLabPlugin"], "swanlab_project": " "}),
        m(LORA, {"plugins": ["axolotl.integrations.swanlab.SwanLabPlugin"]}),
    ]


MUTATIONS = _mutations()


@cache
def corpus() -> tuple[CorpusDocument, ...]:
    """The whole corpus: published examples, rendered recipes, then the mutations of both."""
    examples, recipes = published_examples(), rendered_recipes()
    bases = {document.name: document for document in examples}
    bases.update({document.name.removesuffix(" (defaults)"): document for document in recipes})
    return (*examples, *recipes, *(mutation.document(bases) for mutation in MUTATIONS))
