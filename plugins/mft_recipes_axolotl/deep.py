"""Deep checks of an axolotl config: the installed axolotl's own validation, then its LoRA on the real model.

The schema and the fast validators reason about a config; these checks run the trainer's own code on it:

1. `validate_config` with the plugins the config lists prepared first (`prepare_plugins`, so their keys
   validate as in a real run) and the capabilities of the GPUs the config is meant for (`--gpu`: compute
   capability, bf16, fp8, tf32 from the plan's GPU table; axolotl resolves `bf16: auto` and its kernel
   defaults from them), then `normalize_config`, which reads the model's config.json (a local folder:
   nothing is downloaded). Every key must be one axolotl knows: it drops unknown keys without a word, so a
   typo trains with the default.
2. The model built from that config.json on the meta device (no weights, no memory), with the LoRA
   applied by axolotl's own `load_lora` (so peft's conversion of Mixtral's w1/w2/w3 into the fused expert
   parameters happens as in a real run). Every listed target must match something, a Mixtral config must
   adapt the expert weights, and the trainable count is what peft reports.
3. A DeepSpeed section, with the HF Trainer's "auto" values filled by the Trainer's own code for the GPU
   count, through DeepSpeed's own config classes (deepspeed_check.py).

Without the model's config.json (a base model neither in the catalogue nor a local folder; nothing is
downloaded) only `validate_config` runs, and a warning names the checks that were skipped.

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
from typing import Any

from mft_recipes import Architecture, Problem, ValidationContext, Validator
from mft_recipes_axolotl.deepspeed_check import deepspeed_problems, error_text, resolved_deepspeed
from mft_recipes_axolotl.paths import launch_path
from mft_recipes_axolotl.validators import architecture_of

INSTALL_HINT = "pip install 'mft-recipes[axolotl]'"
SOURCE = "axolotl-deep"

# With no --gpu, axolotl's capability checks run as on this GPU of the plan's table, and a warning says so.
ASSUMED_GPU = "a100-80gb"
# What needs the model's config.json, so is skipped without it.
MODEL_CHECKS = (
    "normalize_config (model type, dtype, sequence length against the model)",
    "LoRA on the real architecture (targets that match nothing, Mixtral experts, trainable count)",
    "DeepSpeed 'auto' values resolved by the HF Trainer (they need the hidden size)",
)


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
    """(capabilities, env_capabilities) for `validate_config`, as axolotl's CLI probes them
    (axolotl/cli/config.py gpu_capabilities) on `gpus` GPUs of model `gpu`, with the torch that is
    installed. The GPU's compute capability comes from the plan plugin's GPU table (the axolotl plugin
    reads that table: a dependency between the two plugins); bf16 and tf32 need 8.0 (transformers'
    is_torch_bf16_gpu_available, is_torch_tf32_available), fp8 9.0 (axolotl's compute_supports_fp8).
    Raises GpuTableError for a GPU the table does not have or gives no compute capability."""
    import torch
    from mft_recipes_plan.gpus import GpuTableError, load_gpu_table

    table, name = load_gpu_table(), gpu or ASSUMED_GPU
    if name not in table:
        raise GpuTableError(
            f"unknown GPU {name!r}; the plan's GPU table has {', '.join(sorted(table))} (add yours to a "
            "table file named by MFT_RECIPES_GPU_TABLE; see docs/plan.md)"
        )
    card = table[name]
    capability = card.capability()
    if capability is None:
        raise GpuTableError(
            f'GPU {card.name!r} has no compute_capability in the GPU table; add it ("9.0" for an H100)'
        )
    major, minor = capability
    capabilities = {
        "bf16": capability >= (8, 0),
        "fp8": capability >= (9, 0),
        "tf32": capability >= (8, 0),
        "n_gpu": gpus,
        "n_node": 1,
        "compute_capability": f"sm_{major}{minor}",
    }
    return capabilities, {"torch_version": str(torch.__version__).split("+", 1)[0]}


def _prepared(document: dict[str, Any]) -> Any:
    """The document as axolotl's config, with the plugins it lists registered as axolotl's CLI does before
    validating (`prepare_plugins`): their argument models join the config model. axolotl's plugin manager
    is a process-wide singleton, so the plugins of a config validated earlier in this process are dropped
    first; a real run starts without them."""
    from axolotl.integrations.base import PluginManager
    from axolotl.utils.config import prepare_plugins
    from axolotl.utils.dict import DictDefault

    config = DictDefault(json.loads(json.dumps(document)))  # a deep copy: axolotl edits in place
    PluginManager.get_instance().plugins.clear()
    prepare_plugins(config)
    return config


def validated_config(
    document: dict[str, Any],
    *,
    gpus: int = 1,
    gpu: str | None = None,
    model_config_dir: str | Path | None = None,
) -> Any:
    """`validate_config` as axolotl's CLI runs it: plugins prepared, the GPUs' capabilities. With
    `model_config_dir`, `base_model_config` points there (a local folder with the model's config.json).
    Raises AxolotlRefused with axolotl's message when it refuses."""
    from axolotl.utils.config import validate_config

    capabilities, env_capabilities = gpu_capabilities(gpus, gpu)
    with _environment(gpus):
        try:
            config = _prepared(document)
            if model_config_dir is not None:
                config.base_model_config = str(model_config_dir)
            return validate_config(config, capabilities=capabilities, env_capabilities=env_capabilities)
        except (
            Exception
        ) as error:  # pydantic's ValidationError, axolotl's ValueErrors, a plugin's ImportError
            raise AxolotlRefused(error_text(error)) from error


def axolotl_config(
    document: dict[str, Any], model_config_dir: str | Path, *, gpus: int = 1, gpu: str | None = None
) -> Any:
    """The config as axolotl trains it: `validated_config`, then `normalize_config` with
    `base_model_config` pointing at a local folder holding the model's config.json.
    Raises AxolotlRefused with axolotl's message when it refuses."""
    from axolotl.utils.config import normalize_config

    validated = validated_config(document, gpus=gpus, gpu=gpu, model_config_dir=model_config_dir)
    _resolve_bf16(validated, gpu_capabilities(gpus, gpu)[0]["bf16"])
    with _environment(gpus):
        try:
            normalize_config(validated)
        except Exception as error:  # axolotl's ValueErrors
            raise AxolotlRefused(error_text(error)) from error
    return validated


def _resolve_bf16(config: Any, supported: bool) -> None:
    """`bf16: auto` as axolotl's resolve_dtype (axolotl/utils/config/__init__.py, called by
    normalize_config) resolves it on a GPU with or without bf16: on, or off with fp16 on unless fp16 or
    float16 is set. Resolved here for the GPUs the config is meant for (as validate_config's capabilities
    are), since resolve_dtype asks the GPU of the machine it runs on; it leaves a resolved value alone."""
    if not config.fp16 and config.bf16 == "auto" and not config.use_ray:
        config.bf16 = supported
        if not supported and config.fp16 is None and not config.float16:
            config.fp16 = True


@contextlib.contextmanager
def _environment(gpus: int) -> Iterator[None]:
    """axolotl reads WORLD_SIZE while validating and normalizing; nothing is downloaded. Each variable is
    restored afterwards as it was, or removed."""
    values = {"WORLD_SIZE": str(gpus), "HF_HUB_OFFLINE": "1", "DO_NOT_TRACK": "1"}
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


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
    model with the listed plugins' arguments merged in, not the committed schema, so it also speaks for
    a newer axolotl."""
    from axolotl.integrations.config import merge_input_args
    from axolotl.utils.schemas.datasets import SFTDataset

    _prepared(document)  # the config model validate_config uses: with the listed plugins' arguments
    top, dataset = _field_names(merge_input_args()[1]), _field_names(SFTDataset)
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
def model_config_folder(
    document: dict[str, Any], architecture: Architecture | None, context: ValidationContext
) -> Iterator[Path | None]:
    """A local folder with the model's config.json: the document's own local base_model(_config), found
    from the launch directory as axolotl finds it, else one written from the architecture's published
    values; None when neither is known."""
    for key in ("base_model_config", "base_model"):
        value = document.get(key)
        if isinstance(value, str) and value and (launch_path(value, context) / "config.json").is_file():
            yield launch_path(value, context)
            return
    if architecture is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="mft-recipes-config-") as folder:
        (Path(folder) / "config.json").write_text(json.dumps(architecture.hf_config()), encoding="utf-8")
        yield Path(folder)


def check_deep(document: Any, context: ValidationContext) -> list[Problem]:
    """The `axolotl-deep` validator (`validate --deep`): checks 1 to 3 above, as Problems."""
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
    from mft_recipes_plan.gpus import GpuTableError

    gpus = context.gpus or 1
    try:
        gpu_capabilities(gpus, context.gpu)
    except GpuTableError as error:
        return [Problem(f"--gpu: {error}", (), "unknown-gpu", source=SOURCE)]
    problems = [] if context.gpu else [_assumed_gpu()]
    base_model = document.get("base_model")
    architecture = architecture_of(document, context)
    try:
        problems += key_problems(document)
        # peft prints its trainable count on stdout, which belongs to `validate --json`.
        with (
            contextlib.redirect_stdout(sys.stderr),
            model_config_folder(document, architecture, context) as folder,
        ):
            if folder is None:
                validated_config(document, gpus=gpus, gpu=context.gpu)
                return [*problems, _model_checks_skipped(base_model)]
            config = axolotl_config(document, folder, gpus=gpus, gpu=context.gpu)
            problems += lora_problems(apply_lora(config, meta_model(config)), document)
            if isinstance(config.deepspeed, dict):
                problems += _deepspeed_check(config, gpus)
    except AxolotlRefused as error:
        problems.append(Problem(f"axolotl refuses it: {error}", (), "axolotl-refused", source=SOURCE))
    return problems


def _assumed_gpu() -> Problem:
    return Problem(
        f"no --gpu: axolotl's GPU checks ran as on GPU {ASSUMED_GPU} of the plan's table; pass --gpu NAME "
        "for the GPU you will train on",
        (),
        "deep-gpu-assumed",
        severity="warning",
        source=SOURCE,
    )


def _model_checks_skipped(base_model: Any) -> Problem:
    return Problem(
        f"base_model {base_model!r} is not in the catalogue and has no local config.json, so only axolotl's "
        f"validate_config ran; skipped: {'; '.join(MODEL_CHECKS)}. Point base_model_config at a local folder "
        "holding the model's config.json to run them (nothing is downloaded)",
        ("base_model",),
        "deep-model-checks-skipped",
        severity="warning",
        source=SOURCE,
    )


def _deepspeed_check(config: Any, gpus: int) -> list[Problem]:
    try:
        import deepspeed  # noqa: F401
    except ImportError:
        message = (
            "DeepSpeed is not installed, so its own classes did not check the section: pip install deepspeed"
        )
        return [Problem(message, ("deepspeed",), "deep-no-deepspeed", severity="warning", source=SOURCE)]
    try:
        section = resolved_deepspeed(config, gpus, meta_model_config(config))
    except ValueError as error:  # the HF Trainer refuses a value that contradicts the config
        raise AxolotlRefused(str(error)) from error
    return deepspeed_problems(section, gpus)


def meta_model_config(config: Any) -> Any:
    """The model's config as axolotl loads it: the local config.json with the `model_config` overrides."""
    from axolotl.loaders.utils import load_model_config

    return load_model_config(config)


DEEP_VALIDATOR = Validator(
    SOURCE,
    ("axolotl",),
    check_deep,
    "axolotl's own validation, LoRA on the real architecture (meta device), DeepSpeed's own classes",
    deep=True,
)
