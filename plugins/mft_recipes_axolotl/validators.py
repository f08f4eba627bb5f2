"""Checks of axolotl configs that axolotl itself does not make, or makes only after the model is loaded.

Each one catches a config that starts and then trains less than it claims, or cannot fit: LoRA that
misses Mixtral's experts, targets that match nothing, settings peft refuses at the first step.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeGuard

from mft_recipes import Architecture, Problem, ValidationContext, Validator
from mft_recipes_axolotl.cpu import is_cpu_run
from mft_recipes_axolotl.deepspeed import SCHEMA as DEEPSPEED_SCHEMA
from mft_recipes_axolotl.deepspeed import deepspeed_of, zero_stage
from mft_recipes_axolotl.generators import ATTENTION_MODULES, DENSE_MLP_MODULES, EXPERT_MODULES
from mft_recipes_axolotl.integrations import check_plugins
from mft_recipes_axolotl.paths import beside_config, launch_dir, launch_path, relative_path_hint
from mft_recipes_axolotl.refusals import REFUSALS, refusal_problems

KIND = ("axolotl",)
EXPERT_PARAMETERS = ("gate_up_proj", "down_proj")
# Beyond this many sequences per optimizer update a fine-tune takes few steps per epoch and the
# learning rate schedule barely moves; it is almost always a mistake in accumulation or GPU count.
LARGEST_SENSIBLE_GLOBAL_BATCH = 1024


def architecture_of(document: dict[str, Any], context: ValidationContext) -> Architecture | None:
    """The architecture a config trains: from base_model_config or base_model, read from the config.json
    of a local model folder (as axolotl finds it, from the launch directory) or from the catalogue."""
    for key in ("base_model_config", "base_model"):
        value = document.get(key)
        if isinstance(value, str) and value:
            local = launch_path(value, context)
            found = context.architectures.find(str(local) if (local / "config.json").is_file() else value)
            if found is not None:
                return found
    return None


def is_moe(document: dict[str, Any], context: ValidationContext) -> bool:
    architecture = architecture_of(document, context)
    if architecture is not None:
        return architecture.is_moe
    names = " ".join(str(document.get(key, "")) for key in ("base_model", "base_model_config", "model_type"))
    return "mixtral" in names.lower()


def _listed(document: dict[str, Any], key: str) -> list[str]:
    """The names under `key` (lora_target_modules, lora_target_parameters): a list, or one string."""
    names = document.get(key) or []
    return [names] if isinstance(names, str) else [str(name) for name in names]


def _targets(document: dict[str, Any]) -> list[str]:
    return _listed(document, "lora_target_modules")


def _uses_lora(document: dict[str, Any]) -> bool:
    return document.get("adapter") in ("lora", "qlora")


def expert_targets(document: dict[str, Any]) -> list[str]:
    """The targets that put LoRA on Mixtral's experts: w1/w2/w3 modules or fused expert parameters."""
    found = [module for module in _targets(document) if module in EXPERT_MODULES]
    found += [
        name
        for name in _listed(document, "lora_target_parameters")
        if name.rsplit(".", 1)[-1] in EXPERT_PARAMETERS
    ]
    return found


def check_axolotl_refusals(document: dict[str, Any], context: ValidationContext) -> Iterator[Problem]:
    """What axolotl's own validate_config would refuse, restated (refusals/) so no GPU is rented for it."""
    yield from refusal_problems(document, context, REFUSALS)


def check_moe_experts_trained(document: dict[str, Any], context: ValidationContext) -> Iterator[Problem]:
    if not _uses_lora(document) or not is_moe(document, context) or expert_targets(document):
        return
    via_linear = (
        " lora_target_linear adapts the attention projections only (axolotl picks Linear layers; the router is not one):"
        if document.get("lora_target_linear")
        else ""
    )
    yield Problem(
        "this Mixtral config trains no expert weights." + via_linear + " on transformers 5.x the experts are "
        "fused 3-D parameters, not Linear layers. Add w1, w2, w3 to lora_target_modules (peft converts them "
        "to mlp.experts.gate_up_proj and down_proj) or set lora_target_parameters: "
        "[mlp.experts.gate_up_proj, mlp.experts.down_proj], with lora_dropout: 0",
        ("lora_target_linear",) if document.get("lora_target_linear") else ("lora_target_modules",),
        code="moe-experts-not-trained",
    )


def check_expert_dropout(document: dict[str, Any], context: ValidationContext) -> Iterator[Problem]:
    """Expert targets named as modules (w1/w2/w3) with dropout: axolotl says nothing (with
    lora_target_parameters it refuses, validate_lora_target_parameters_dropout), peft stops at step one."""
    dropout = document.get("lora_dropout") or 0
    if (
        _uses_lora(document)
        and expert_targets(document)
        and dropout != 0
        and not document.get("lora_target_parameters")
    ):
        yield Problem(
            f"lora_dropout is {dropout}, but LoRA on Mixtral's experts runs through peft's ParamWrapper, which "
            "refuses dropout (training stops at the first step); set lora_dropout: 0",
            ("lora_dropout",),
            code="expert-lora-dropout",
        )


def check_w1_with_w3(document: dict[str, Any], context: ValidationContext) -> Iterator[Problem]:
    targets = set(_targets(document))
    if ("w1" in targets) != ("w3" in targets) and is_moe(document, context):
        given, missing = ("w1", "w3") if "w1" in targets else ("w3", "w1")
        yield Problem(
            f"lora_target_modules has {given} without {missing}: Mixtral fuses w1 and w3 into one gate_up_proj "
            f"parameter and peft refuses one without the other; add {missing}",
            ("lora_target_modules",),
            code="w1-without-w3",
        )


def check_dense_targets(document: dict[str, Any], context: ValidationContext) -> Iterator[Problem]:
    architecture = architecture_of(document, context)
    if architecture is None or architecture.is_moe or not _uses_lora(document):
        return
    names = [module for module in _targets(document) if module in EXPERT_MODULES]
    if names:
        yield Problem(
            f"{', '.join(names)} are Mixtral expert names and match nothing in {architecture.name} (peft ignores "
            f"them without a word); its MLP is {', '.join(DENSE_MLP_MODULES)}",
            ("lora_target_modules",),
            code="targets-match-nothing",
        )


def check_moe_experts_quantized(document: dict[str, Any], context: ValidationContext) -> Iterator[Problem]:
    architecture = architecture_of(document, context)
    if architecture is None or not architecture.is_moe or not document.get("load_in_4bit"):
        return
    if document.get("quantize_moe_experts"):
        return
    layers, experts = architecture.num_hidden_layers, architecture.num_local_experts
    expert_params = layers * experts * 3 * architecture.hidden_size * architecture.intermediate_size
    if is_cpu_run(document):
        # No bf16 or fp16 on a CPU run: transformers loads what stays unquantized in float32.
        yield Problem(
            f"load_in_4bit quantizes Linear layers only, and this CPU run (device=cpu) leaves out "
            f"quantize_moe_experts, which needs CUDA: {architecture.name}'s fused experts "
            f"({expert_params / 1e9:.1f} B parameters) stay float32, {expert_params * 4 / 2**30:.0f} GiB of RAM "
            "per process (`mft-recipes plan RECIPE device=cpu ...` adds up the rest). A CPU run is a smoke "
            "test: give it a small model of the architecture (base_model=./tiny-mixtral)",
            ("load_in_4bit",),
            code="moe-experts-16bit",
            severity="warning",
        )
        return
    fix = "set quantize_moe_experts: true to load them in 4-bit"
    if document.get("lora_target_linear"):
        # axolotl refuses lora_target_linear with quantize_moe_experts (check_quantize_moe_experts).
        targets = ", ".join((*ATTENTION_MODULES, *EXPERT_MODULES))
        fix = (
            "replace lora_target_linear (axolotl refuses it together with quantize_moe_experts) by "
            f"lora_target_modules: [{targets}] with lora_dropout: 0, then " + fix
        )
    yield Problem(
        f"load_in_4bit quantizes Linear layers only: {architecture.name}'s fused experts "
        f"({expert_params / 1e9:.1f} B parameters, {expert_params * 2 / 2**30:.0f} GiB) stay 16-bit; {fix}",
        ("load_in_4bit",),
        code="moe-experts-16bit",
        severity="warning",
    )


def check_zero3_with_4bit(document: dict[str, Any], context: ValidationContext) -> Iterator[Problem]:
    if zero_stage(document, launch_dir(context)) == 3 and (
        document.get("load_in_4bit") or document.get("load_in_8bit")
    ):
        bits = "load_in_4bit" if document.get("load_in_4bit") else "load_in_8bit"
        yield Problem(
            f"DeepSpeed ZeRO-3 partitions the weights across GPUs, but {bits} makes them bitsandbytes tensors "
            "that ZeRO-3 cannot partition; use ZeRO-2 (or FSDP) for a quantized base, or drop the quantization",
            ("deepspeed",),
            code="zero3-with-quantized-base",
        )


# peft before this version builds expert LoRA from the parameter's shape, which ZeRO-3 has already
# partitioned to an empty tensor: IndexError in ParamWrapper at model load (found by the truth tier's
# two-rank run; axolotl 0.19 pins peft 0.20.0, axolotl 0.21 brings 0.21.2).
PEFT_FOR_ZERO3_EXPERT_LORA = "0.21.2"


def installed_version(distribution: str) -> str | None:
    """The version of an installed distribution, read from its metadata (nothing is imported)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def installed_before(distribution: str, fixed_in: str) -> str | None:
    """The installed version of `distribution` when it is older than `fixed_in`; None when it is new enough
    or not installed (not the machine that trains: nothing to say about its stack)."""
    installed = installed_version(distribution)
    if installed is None:
        return None
    from packaging.version import Version

    return installed if Version(installed) < Version(fixed_in) else None


def check_zero3_expert_lora_peft(document: dict[str, Any], context: ValidationContext) -> Iterator[Problem]:
    if (
        zero_stage(document, launch_dir(context)) != 3
        or not _uses_lora(document)
        or not expert_targets(document)
    ):
        return
    peft = installed_before("peft", PEFT_FOR_ZERO3_EXPERT_LORA)
    if peft is not None:
        yield Problem(
            f"expert LoRA under DeepSpeed ZeRO-3 needs peft {PEFT_FOR_ZERO3_EXPERT_LORA} or newer; the installed "
            f"peft {peft} (axolotl 0.19 pins 0.20.0) reads the shape ZeRO-3 has already partitioned away and "
            f"stops at model load (IndexError in ParamWrapper). Use axolotl 0.21 (Python 3.12)",
            ("deepspeed",),
            code="zero3-expert-lora-needs-peft",
            severity="warning",
        )


# DeepSpeed before this version can load Mixtral's experts wrong under ZeRO-3: a checkpoint's per-expert
# w1/w3, fused into gate_up_proj while zero.Init partitions it, came out different from the checkpoint
# (uninitialized memory, now and then NaN) in 9 of 42 two-rank loads of a tiny Mixtral with DeepSpeed 0.18.9
# (axolotl 0.19's range ends below 0.19) and transformers 5.16.1, and in 11 of 42 with transformers 5.20.1;
# in none of 42 with DeepSpeed 0.19.8 and either transformers (torch 2.13.0 CPU, gloo). Bisected: 0.19.3,
# 0.19.5, 0.19.6 and 0.19.7 still differ. So it is DeepSpeed's, not transformers' as first thought, and
# 0.19.8 names the cause: its `_allgather_params` (runtime/zero/partition_parameters.py) waited only on the
# last of a group's all-gather handles, and "gloo handles are independent", so the first parameter of a
# group (gate_up_proj, gathered with down_proj) could be read before it arrived. Over NCCL on GPUs the
# collectives run in order on one stream, so GPU runs are probably not affected; that was not measured,
# so the warning stands for them too. Found by the truth tier's two-rank run, which compares every loaded
# weight with the checkpoint.
DEEPSPEED_FOR_ZERO3_MOE_LOAD = "0.19.8"


def check_zero3_moe_load_deepspeed(document: dict[str, Any], context: ValidationContext) -> Iterator[Problem]:
    if zero_stage(document, launch_dir(context)) != 3 or not is_moe(document, context):
        return
    deepspeed = installed_before("deepspeed", DEEPSPEED_FOR_ZERO3_MOE_LOAD)
    if deepspeed is not None:
        yield Problem(
            f"Mixtral under DeepSpeed ZeRO-3 needs DeepSpeed {DEEPSPEED_FOR_ZERO3_MOE_LOAD} or newer; the "
            f"installed DeepSpeed {deepspeed} (axolotl 0.19 allows only below 0.19) can load the experts' "
            "fused gate_up_proj wrong while ZeRO-3 partitions it (uninitialized values, sometimes NaN; "
            f"measured on CPU ranks over gloo, whose all-gathers DeepSpeed before {DEEPSPEED_FOR_ZERO3_MOE_LOAD} does "
            "not all wait for; "
            "GPU ranks over NCCL not measured): the run would train from corrupted expert weights. Use axolotl "
            f"0.21 (Python 3.12) with deepspeed>={DEEPSPEED_FOR_ZERO3_MOE_LOAD}",
            ("deepspeed",),
            code="zero3-moe-load-needs-deepspeed",
            severity="warning",
        )


def check_deepspeed_section(document: dict[str, Any], context: ValidationContext) -> Iterator[Problem]:
    config = document.get("deepspeed")
    if isinstance(config, dict):
        from mft_recipes import check_against_schema

        for problem in check_against_schema(config, DEEPSPEED_SCHEMA):
            yield Problem(problem.message, ("deepspeed", *problem.path), code=problem.code)
    elif isinstance(config, str) and deepspeed_of(document, launch_dir(context)) is None:
        if launch_path(config, context).is_file():
            why = "it is not a JSON object"
        else:
            why = relative_path_hint(config, context)
            if config.startswith("deepspeed_configs/") and beside_config(config, context) is None:
                why += " (`axolotl fetch deepspeed_configs` copies axolotl's into ./deepspeed_configs)"
        yield Problem(
            f"deepspeed names {config!r}, which axolotl cannot read as a DeepSpeed JSON file: {why}; put the "
            "section inline or fix the path",
            ("deepspeed",),
            code="deepspeed-unreadable",
        )


DATASET_LISTS = ("datasets", "test_datasets", "pretraining_dataset")
# Keys whose value transformers or peft loads from a local folder when one exists there, else from the hub.
LOCAL_OR_HUB = {
    "base_model": "model",
    "base_model_config": "model",
    "tokenizer_config": "tokenizer",
    "lora_model_dir": "adapter",
}


def check_relative_paths(document: dict[str, Any], context: ValidationContext) -> Iterator[Problem]:
    """A model, tokenizer, adapter or dataset that exists next to the config but not in the launch
    directory: axolotl would look for a hub repository of that name instead (and fail, or train on
    something else)."""
    named: list[tuple[tuple[str | int, ...], Any, str]] = [
        ((key,), document.get(key), f"a hub {what} of that name") for key, what in LOCAL_OR_HUB.items()
    ]
    for key in DATASET_LISTS:
        entries = document.get(key)
        for index, entry in enumerate(entries if isinstance(entries, list) else ()):
            if isinstance(entry, dict):
                named.append(((key, index, "path"), entry.get("path"), "a hub dataset of that name"))
    for path, value, instead in named:
        if isinstance(value, str) and value and beside_config(value, context) is not None:
            yield Problem(
                f"{value!r} would not be found, so axolotl would look for {instead}: "
                + relative_path_hint(value, context),
                path,
                code="path-beside-config",
                severity="warning",
            )


def check_batch(document: dict[str, Any], context: ValidationContext) -> Iterator[Problem]:
    """The batch of an axolotl config and of its DeepSpeed section: the Hugging Face Trainer fills the
    section's "auto" values from the config and refuses numbers that differ (transformers'
    HfTrainerDeepSpeedConfig.trainer_config_process, fill_match), then DeepSpeed checks the total."""
    micro = document.get("micro_batch_size", 1)
    accumulation = document.get("gradient_accumulation_steps", 1)
    if not _whole(micro) or not _whole(accumulation):
        return
    config = deepspeed_of(document, launch_dir(context)) or {}
    for key, value in (
        ("train_micro_batch_size_per_gpu", micro),
        ("gradient_accumulation_steps", accumulation),
    ):
        given = config.get(key)
        if _whole(given) and given != value:
            yield Problem(
                f"DeepSpeed's {key} is {given} but the config's is {value}; DeepSpeed refuses the mismatch at "
                'launch: write "auto" and let the Trainer fill it',
                ("deepspeed", key),
                code="batch-mismatch",
            )
    total = config.get("train_batch_size")
    yield from _batch_total(total, micro, accumulation, context.gpus, ("deepspeed",), "micro_batch_size")
    yield from _batch_size_sense(
        micro * accumulation * (context.gpus or 1), micro, accumulation, context.gpus
    )


def check_deepspeed_batch(document: dict[str, Any], context: ValidationContext) -> Iterator[Problem]:
    """A DeepSpeed config file on its own: the check its section gets inside an axolotl config, on its
    own batch values (numbers only: the Trainer fills "auto" ones from its own arguments)."""
    micro = document.get("train_micro_batch_size_per_gpu")
    accumulation = document.get("gradient_accumulation_steps")
    if not _whole(micro) or not _whole(accumulation):
        return
    total = document.get("train_batch_size")
    yield from _batch_total(total, micro, accumulation, context.gpus, (), "train_micro_batch_size_per_gpu")
    global_batch = total if _whole(total) else micro * accumulation * (context.gpus or 1)
    yield from _batch_size_sense(global_batch, micro, accumulation, context.gpus)


def _whole(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _batch_total(
    total: Any, micro: int, accumulation: int, gpus: int | None, where: tuple[str, ...], micro_key: str
) -> Iterator[Problem]:
    """DeepSpeed's own rule (deepspeed/runtime/config.py, DeepSpeedConfig._batch_assertion):
    train_batch_size = micro batch × gradient_accumulation_steps × GPUs, or it stops at launch. With the
    GPUs known (`validate --gpus N`, a recipe's hardware) the total must be that product; without, a
    multiple of micro × accumulation for some whole number of GPUs."""
    if not _whole(total):
        return
    per_gpu = micro * accumulation
    product = f"{micro_key} × gradient_accumulation_steps ({micro} × {accumulation})"
    if gpus and total != per_gpu * gpus:
        yield Problem(
            f"DeepSpeed's train_batch_size {total} is not {product} × {gpus} GPUs = {per_gpu * gpus}: "
            f'DeepSpeed refuses it at launch; write {per_gpu * gpus}, or "auto" to let the Trainer fill it',
            (*where, "train_batch_size"),
            code="batch-mismatch",
        )
    elif not gpus and total % per_gpu:
        yield Problem(
            f"DeepSpeed's train_batch_size {total} is not {product} × GPUs for any whole number of GPUs; "
            'write "auto"',
            (*where, "train_batch_size"),
            code="batch-mismatch",
        )


def _batch_size_sense(
    global_batch: int, micro: int, accumulation: int, gpus: int | None
) -> Iterator[Problem]:
    if global_batch > LARGEST_SENSIBLE_GLOBAL_BATCH:
        on = f" × {gpus} GPUs" if gpus else ""
        yield Problem(
            f"micro batch {micro} × gradient_accumulation_steps {accumulation}{on} = {global_batch} "
            f"sequences per optimizer step; above {LARGEST_SENSIBLE_GLOBAL_BATCH} a fine-tune takes very few "
            "steps. Lower gradient_accumulation_steps",
            ("gradient_accumulation_steps",),
            code="batch-too-large",
            severity="warning",
        )


VALIDATORS = (
    Validator(
        "axolotl-refusals",
        KIND,
        check_axolotl_refusals,
        "what axolotl's own validation refuses, without axolotl",
    ),
    Validator(
        "moe-experts-trained", KIND, check_moe_experts_trained, "Mixtral LoRA that trains no expert weights"
    ),
    Validator("expert-lora-dropout", KIND, check_expert_dropout, "expert LoRA with non-zero lora_dropout"),
    Validator("w1-with-w3", KIND, check_w1_with_w3, "w1 targeted without w3 (or w3 without w1)"),
    Validator(
        "dense-targets", KIND, check_dense_targets, "expert names on a dense Mistral, which match nothing"
    ),
    Validator(
        "moe-experts-quantized", KIND, check_moe_experts_quantized, "4-bit Mixtral whose experts stay 16-bit"
    ),
    Validator("zero3-quantized", KIND, check_zero3_with_4bit, "DeepSpeed ZeRO-3 with a 4-bit or 8-bit base"),
    Validator(
        "zero3-expert-lora-peft",
        KIND,
        check_zero3_expert_lora_peft,
        "expert LoRA under ZeRO-3 with an installed peft too old to wrap partitioned experts",
    ),
    Validator(
        "zero3-moe-load-deepspeed",
        KIND,
        check_zero3_moe_load_deepspeed,
        "Mixtral under ZeRO-3 with an installed DeepSpeed that can load its experts wrong",
    ),
    Validator("deepspeed-section", KIND, check_deepspeed_section, "the DeepSpeed section against its schema"),
    Validator("batch", KIND, check_batch, "micro batch × accumulation × GPUs, and DeepSpeed's batch values"),
    Validator(
        "deepspeed-batch",
        ("deepspeed",),
        check_deepspeed_batch,
        "a DeepSpeed file's train_batch_size against micro batch × accumulation × GPUs",
    ),
    Validator("plugins", KIND, check_plugins, "plugins the schema does not know, and keys left unchecked"),
    Validator(
        "relative-paths",
        KIND,
        check_relative_paths,
        "a model or dataset path that exists next to the config but not where axolotl is launched",
    ),
)
