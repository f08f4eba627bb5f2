"""Deep checks of an axolotl config: the installed axolotl's own validation, then its LoRA on the real model.

The schema and the fast validators reason about a config; these checks run the trainer's own code on it:

1. `validate_config` with the capabilities of the GPUs the config is meant for (bf16 GPUs: axolotl resolves
   `bf16: auto` and its kernel defaults from them), then `normalize_config`, which reads the model's
   config.json (a local folder: nothing is downloaded). Every key must be one axolotl knows: it drops
   unknown keys without a word, so a typo trains with the default.
2. The model built from that config.json on the meta device (no weights, no memory), with the LoRA
   applied by axolotl's own `load_lora` (so peft's conversion of Mixtral's w1/w2/w3 into the fused expert
   parameters happens as in a real run). Every listed target must match something, a Mixtral config must
   adapt the expert weights, and the trainable count is what peft reports.
3. A DeepSpeed section, with the HF Trainer's "auto" values filled by the Trainer's own code for the GPU
   count, through DeepSpeed's own config classes.

Used by `mft-recipes validate --deep` (the `axolotl-deep` validator) and by the axolotl test tier.
Everything heavy is imported inside the functions: importing this module costs nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from mft_recipes.architectures import Architecture
from mft_recipes.problems import Problem
from mft_recipes.validation import ValidationContext, Validator

INSTALL_HINT = "pip install 'mft-recipes[axolotl]'"
SOURCE = "axolotl-deep"

# Compute capability by GPU family (the prefix of a recipe's `hardware.gpu`, e.g. "h100-80gb"): what
# axolotl's capability checks read. Anything else is taken to be an Ampere-class bf16 GPU.
COMPUTE_CAPABILITY = {
    "b200": "sm_100",
    "h200": "sm_90",
    "h100": "sm_90",
    "l40s": "sm_89",
    "l4": "sm_89",
    "rtx4090": "sm_89",
    "a6000": "sm_86",
    "a10g": "sm_86",
    "a100": "sm_80",
}
DEFAULT_COMPUTE_CAPABILITY = "sm_80"


class AxolotlRefused(Exception):
    """axolotl's own validation or normalization refused the config; the message is axolotl's."""


@dataclass(frozen=True)
class LoraReport:
    """What axolotl's LoRA did to the real architecture (meta device).

    `unmatched` are listed targets that adapted nothing; `expert_parameters` the fused expert parameters
    (`gate_up_proj`, `down_proj`) that carry LoRA; `trainable`/`total` are peft's own counts.
    """

    adapter: str | None
    trainable: int
    total: int
    targeted_modules: tuple[str, ...]
    targeted_parameters: tuple[str, ...]
    unmatched: tuple[str, ...]
    expert_parameters: tuple[str, ...]
    is_moe: bool


def gpu_capabilities(gpus: int = 1, gpu: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(capabilities, env_capabilities) for `validate_config`, as axolotl would probe them on `gpus` GPUs
    of kind `gpu` (bf16 and tf32 capable), with the torch that is installed."""
    import torch

    family = (gpu or "").split("-", 1)[0].lower()
    compute = COMPUTE_CAPABILITY.get(family, DEFAULT_COMPUTE_CAPABILITY)
    capabilities = {
        "bf16": True,
        "fp8": int(compute.removeprefix("sm_")) >= 89,
        "tf32": True,
        "n_gpu": gpus,
        "n_node": 1,
        "compute_capability": compute,
    }
    return capabilities, {"torch_version": str(torch.__version__).split("+", 1)[0]}


def axolotl_config(
    document: dict[str, Any], model_config_dir: str | Path, *, gpus: int = 1, gpu: str | None = None
) -> Any:
    """The config as axolotl trains it: `validate_config` with the GPUs' capabilities, then
    `normalize_config` with `base_model_config` pointing at a local folder holding the model's config.json.
    Raises AxolotlRefused with axolotl's message when it refuses."""
    from unittest import mock

    from axolotl.utils.config import normalize_config, validate_config
    from axolotl.utils.dict import DictDefault

    capabilities, env_capabilities = gpu_capabilities(gpus, gpu)
    config = DictDefault(json.loads(json.dumps(document)))  # a deep copy: axolotl edits in place
    config.base_model_config = str(model_config_dir)
    # normalize_config resolves `bf16: auto` by probing the GPU of the machine it runs on; answer for the
    # GPUs the config is meant for, as validate_config's capabilities do.
    bf16_probe = mock.patch("axolotl.utils.config.is_torch_bf16_gpu_available", return_value=True)
    # axolotl reads WORLD_SIZE while normalizing; the environment is restored afterwards.
    environment = mock.patch.dict(os.environ, WORLD_SIZE=str(gpus), HF_HUB_OFFLINE="1", DO_NOT_TRACK="1")
    with environment, bf16_probe:
        try:
            validated = validate_config(config, capabilities=capabilities, env_capabilities=env_capabilities)
            normalize_config(validated)
        except Exception as error:  # pydantic's ValidationError, axolotl's ValueErrors
            raise AxolotlRefused(_first_lines(str(error))) from error
    return validated


def _first_lines(text: str, limit: int = 12) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return "\n".join(lines[:limit]) + ("\n..." if len(lines) > limit else "")


def _field_names(model: Any) -> dict[str, Any]:
    """{every name a YAML may use for a field of the pydantic `model`: that field}."""
    names: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        names[name] = field
        choices = getattr(field.validation_alias, "choices", None) or [field.validation_alias]
        for alias in [field.alias, *choices]:
            if isinstance(alias, str):
                names[alias] = field
    return names


def key_problems(document: dict[str, Any]) -> list[Problem]:
    """Keys of the document (and of its SFT dataset entries) that the installed axolotl would drop
    (errors), and keys it marks deprecated (warnings). This reads the installed axolotl's own config
    model, not the committed schema, so it also speaks for a newer axolotl."""
    from axolotl.utils.schemas.config import AxolotlInputConfig
    from axolotl.utils.schemas.datasets import SFTDataset

    top, dataset = _field_names(AxolotlInputConfig), _field_names(SFTDataset)
    located: list[tuple[tuple[str | int, ...], str, dict[str, Any]]] = [
        ((key,), key, top) for key in document
    ]
    if not document.get("rl"):  # preference datasets have models of their own; the schema covers them
        for index, entry in enumerate(document.get("datasets") or []):
            for key in entry if isinstance(entry, dict) else ():
                located.append((("datasets", index, key), key, dataset))
    problems = []
    for path, key, known in located:
        if key not in known:
            message = f"axolotl {_axolotl_version()} does not know {key!r} and would drop it without a word"
            problems.append(Problem(message, path, "axolotl-unknown-key", source=SOURCE))
        elif known[key].deprecated:
            message = f"axolotl {_axolotl_version()} marks {key!r} deprecated: {known[key].deprecated}"
            problems.append(Problem(message, path, "axolotl-deprecated", severity="warning", source=SOURCE))
    return problems


def _axolotl_version() -> str:
    from importlib.metadata import version

    return version("axolotl")


def meta_model(config: Any) -> Any:
    """The model axolotl would load, built from its config.json (with the config's `model_config`
    overrides) on the meta device: every parameter with its real shape, no memory."""
    import torch
    from transformers import AutoModelForCausalLM

    model_config = meta_model_config(config)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(model_config)


def apply_lora(config: Any, model: Any) -> LoraReport:
    """Apply the config's adapter to `model` with axolotl's own `load_lora` (or, with no adapter, freeze
    what axolotl freezes) and report what got trained."""
    is_moe = bool(getattr(model.config, "num_local_experts", 0))
    if config.adapter in ("lora", "qlora"):
        from axolotl.loaders.adapter import load_lora

        model, _ = load_lora(model, config)
        tuner = model.base_model
        modules = tuple(tuner.targeted_module_names)
        parameters = tuple(tuner.targeted_parameter_names)
    elif config.adapter:
        raise AxolotlRefused(f"adapter {config.adapter!r}: only lora, qlora and full fine-tunes are checked")
    else:
        if config.unfrozen_parameters:
            from axolotl.utils.freeze import freeze_layers_except

            freeze_layers_except(model, config.unfrozen_parameters)
        modules, parameters = (), ()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    expert_parameters = tuple(sorted({name.rsplit(".", 1)[-1] for name in parameters if ".experts." in name}))
    if not config.adapter and is_moe:
        experts = (name for name, p in model.named_parameters() if p.requires_grad and ".experts." in name)
        expert_parameters = tuple(sorted({name.rsplit(".", 1)[-1] for name in experts}))
    return LoraReport(
        adapter=config.adapter,
        trainable=trainable,
        total=total,
        targeted_modules=modules,
        targeted_parameters=parameters,
        unmatched=_unmatched_targets(config, model, modules, parameters),
        expert_parameters=expert_parameters,
        is_moe=is_moe,
    )


def _unmatched_targets(
    config: Any, model: Any, modules: tuple[str, ...], parameters: tuple[str, ...]
) -> tuple[str, ...]:
    """Listed `lora_target_modules` / `lora_target_parameters` entries that adapted nothing. A checkpoint
    name peft converts (Mixtral's w1/w2/w3 → the fused expert parameters) counts when its conversion did."""
    if not config.adapter or not isinstance(config.lora_target_modules, list):
        listed_modules: list[str] = []
    else:
        listed_modules = list(config.lora_target_modules)
    converted = _peft_conversion(model)

    def matches(target: str, names: tuple[str, ...]) -> bool:  # peft's own rule for a listed name
        return any(name == target or name.endswith("." + target) for name in names)

    unmatched = [
        target
        for target in listed_modules
        if not matches(target, modules)
        and not (target in converted and matches(converted[target], parameters))
    ]
    unmatched += [target for target in config.lora_target_parameters or [] if not matches(target, parameters)]
    return tuple(unmatched)


def _peft_conversion(model: Any) -> dict[str, str]:
    """peft's renaming of checkpoint target names for this model type ({"w1": "gate_up_proj", ...})."""
    try:
        from peft.utils import transformers_weight_conversion as conversion
    except ImportError:
        return {}
    model_type = getattr(model.config, "model_type", None)
    pattern = getattr(conversion, "_MODEL_TO_CONVERSION_PATTERN", {}).get(model_type, model_type)
    return dict(getattr(conversion, "_MOE_TARGET_MODULE_MAPPING", {}).get(pattern, {}))


def lora_problems(report: LoraReport, document: dict[str, Any] | None = None) -> list[Problem]:
    """What is wrong with what the LoRA trains: targets that match nothing, a MoE whose experts stay frozen."""
    uses_linear = bool(
        document and document.get("lora_target_linear") and not document.get("lora_target_modules")
    )
    targets_key = "lora_target_linear" if uses_linear else "lora_target_modules"
    problems = [
        Problem(
            f"LoRA target {target!r} matches nothing in the model: it trains nothing",
            ("lora_target_modules",),  # unmatched names are listed there
            "target-matches-nothing",
            source=SOURCE,
        )
        for target in report.unmatched
    ]
    if report.is_moe and report.trainable and not report.expert_parameters:
        problems.append(
            Problem(
                "no expert weight is trained: on transformers 5.x the experts are fused parameters that "
                "lora_target_linear and Linear-module targets miss; list w1, w2, w3 in lora_target_modules "
                "(with lora_dropout: 0)",
                (targets_key,),
                "experts-not-trained",
                source=SOURCE,
            )
        )
    return problems


@contextlib.contextmanager
def model_config_folder(document: dict[str, Any], architecture: Architecture | None) -> Iterator[Path | None]:
    """A local folder with the model's config.json: the document's own local base_model(_config), else
    one written from the architecture's published values; None when neither is known."""
    for key in ("base_model_config", "base_model"):
        value = document.get(key)
        if isinstance(value, str) and (Path(value) / "config.json").is_file():
            yield Path(value)
            return
    if architecture is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="mft-recipes-config-") as folder:
        (Path(folder) / "config.json").write_text(json.dumps(architecture.hf_config()), encoding="utf-8")
        yield Path(folder)


def check_deep(document: Any, context: ValidationContext) -> list[Problem]:
    """The `axolotl-deep` validator (`validate --deep`): checks 1 and 2 above, as Problems."""
    try:
        import axolotl  # noqa: F401
    except ImportError:
        return [
            Problem(
                f"--deep runs axolotl's own validation and peft, which are not installed: {INSTALL_HINT}",
                (),
                "deep-unavailable",
                source=SOURCE,
            )
        ]
    base_model = document.get("base_model")
    architecture = context.registry.find_architecture(base_model) if isinstance(base_model, str) else None
    problems = key_problems(document)
    # peft prints its trainable count on stdout, which belongs to `validate --json`.
    with contextlib.redirect_stdout(sys.stderr), model_config_folder(document, architecture) as folder:
        if folder is None:
            return [
                *problems,
                Problem(
                    f"cannot tell the architecture of base_model {base_model!r} without the hub: point "
                    "base_model_config at a local folder holding its config.json",
                    ("base_model",),
                    "deep-no-model-config",
                    severity="warning",
                    source=SOURCE,
                ),
            ]
        gpus = context.gpus or 1
        try:
            config = axolotl_config(document, folder, gpus=gpus)
            problems += lora_problems(apply_lora(config, meta_model(config)), document)
            if isinstance(config.deepspeed, dict):
                problems += _deepspeed_check(config, gpus)
        except AxolotlRefused as error:
            problems.append(Problem(f"axolotl refuses it: {error}", (), "axolotl-refused", source=SOURCE))
    return problems


def _deepspeed_check(config: Any, gpus: int) -> list[Problem]:
    try:
        import deepspeed  # noqa: F401
    except ImportError:
        message = (
            "DeepSpeed is not installed, so its own classes did not check the section: pip install deepspeed"
        )
        return [Problem(message, ("deepspeed",), "deep-no-deepspeed", severity="warning", source=SOURCE)]
    return deepspeed_problems(resolved_deepspeed(config, gpus), gpus)


class _DataParallelWorld:
    """The one question DeepSpeedConfig asks its `mpu` (model-parallel unit): how many data-parallel ranks."""

    def __init__(self, size: int) -> None:
        self.size = size

    def get_data_parallel_world_size(self) -> int:
        return self.size


def resolved_deepspeed(config: Any, gpus: int, num_training_steps: int = 1000) -> dict[str, Any]:
    """The config's DeepSpeed section with every "auto" filled the way the HF Trainer fills it on `gpus`
    ranks (`HfTrainerDeepSpeedConfig.trainer_config_process` / `_finalize`, from the TrainingArguments the
    axolotl config gives and the model's hidden size). Raises AxolotlRefused on a value that contradicts
    the config (the Trainer refuses those too)."""
    from transformers import TrainingArguments
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig, unset_hf_deepspeed_config

    class RecipeTrainingArguments(TrainingArguments):
        @property
        def world_size(self) -> int:  # the recipe's GPUs, not this process's
            return gpus

    with tempfile.TemporaryDirectory(prefix="mft-recipes-ds-") as output_dir:
        arguments = RecipeTrainingArguments(
            output_dir=output_dir,
            per_device_train_batch_size=config.micro_batch_size,
            gradient_accumulation_steps=config.gradient_accumulation_steps,
            learning_rate=config.learning_rate,
            weight_decay=config.weight_decay or 0.0,
            max_grad_norm=config.max_grad_norm if config.max_grad_norm is not None else 1.0,
            bf16=config.bf16 is True,
            fp16=config.fp16 is True,
            report_to="none",
            use_cpu=True,  # this process's device: it changes no DeepSpeed value, and lets bf16 be asked here
        )
    section = json.loads(json.dumps(dict(config.deepspeed)))
    hf_config = HfTrainerDeepSpeedConfig(section)
    try:
        hf_config.trainer_config_process(arguments)
        model = SimpleNamespace(config=meta_model_config(config))  # the Trainer reads its hidden size
        hf_config.trainer_config_finalize(arguments, model, num_training_steps)
    except ValueError as error:
        raise AxolotlRefused(str(error)) from error
    finally:
        unset_hf_deepspeed_config()  # it registers itself globally: transformers would think ZeRO-3 is on
    resolved: dict[str, Any] = hf_config.config
    return resolved


def meta_model_config(config: Any) -> Any:
    """The model's config as axolotl loads it: the local config.json with the `model_config` overrides."""
    from axolotl.loaders.utils import load_model_config

    return load_model_config(config)


def deepspeed_problems(section: dict[str, Any], gpus: int) -> list[Problem]:
    """What DeepSpeed's own config classes say of a resolved section on `gpus` data-parallel ranks: the
    strict ZeRO model, the batch arithmetic, and any value still "auto"."""
    from unittest import mock

    from deepspeed.runtime.config import DeepSpeedConfig

    left = [key for key, value in _leaves(section) if value == "auto"]
    if left:
        return [
            Problem(
                f"still 'auto' after the HF Trainer's resolution: {', '.join(left)}",
                ("deepspeed",),
                "deepspeed-auto-left",
                source=SOURCE,
            )
        ]
    try:
        with mock.patch("deepspeed.runtime.config.dist.get_rank", return_value=0):
            DeepSpeedConfig(json.loads(json.dumps(section)), mpu=_DataParallelWorld(gpus))
    except Exception as error:  # pydantic ValidationError, DeepSpeed's assertions on batch sizes
        return [
            Problem(
                f"DeepSpeed refuses it: {_first_lines(str(error))}",
                ("deepspeed",),
                "deepspeed-refused",
                source=SOURCE,
            )
        ]
    return []


def _leaves(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, node


DEEP_VALIDATOR = Validator(
    SOURCE,
    ("axolotl",),
    check_deep,
    "axolotl's own validation, LoRA on the real architecture (meta device), DeepSpeed's own classes",
    deep=True,
)
