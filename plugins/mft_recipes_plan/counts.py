"""Exact parameter counts of a rendered axolotl document, in closed form over the architecture.

The model is described tensor by tensor, under the names transformers 5.x gives the parameters in memory
(`model.layers.N.mlp.experts.gate_up_proj`, not the checkpoint's `block_sparse_moe.experts.N.w1`). What a
document trains is then worked out the way the pinned stack (axolotl 0.19, peft 0.20) does it:

- `lora_target_modules` match module names by suffix (a string is a regex or peft's `all-linear`);
- `lora_target_linear: true` is axolotl's `find_all_linear_names`: leaf names of modules that are
  `nn.Linear` (or have "Linear" in their class name), minus `lm_head`. On Mixtral that is the attention
  projections only: the router (`MixtralTopKRouter`) and the fused experts are not Linear modules;
- on Mixtral, peft rewrites the checkpoint names: `w1`+`w3` become `target_parameters` on the fused
  `gate_up_proj` with rank (and alpha) doubled, `w2` becomes `down_proj`, `gate` becomes the router's
  `gate.weight`; `w1` without `w3` is an error. On Mistral the names `w1/w2/w3` match nothing;
- `lora_target_parameters` adapt the named parameters at rank r (per expert for a 3-D parameter);
- `lora_modules_to_save` train a full copy of the named modules;
- no adapter is a full fine-tune: everything trains, or only what `unfrozen_parameters` names (axolotl's
  `freeze_layers_except`: each pattern `re.match`ed at the start of the name, dots literal).

A LoRA pair on a weight of shape (out, in) adds r·(in + out) parameters; on a 3-D expert parameter of
shape (E, a, b) it adds E·r·(a + b). The formulas are checked against peft's own count on the meta device:
on small models of every document shape (tests/plan/test_counts_against_peft.py) and on the published
configs of the three models (tests/truth/test_truth_architecture.py), both in the axolotl tier.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from mft_recipes import Architecture

# peft's renaming of Mixtral's checkpoint targets (peft/utils/transformers_weight_conversion.py,
# _MOE_TARGET_MODULE_MAPPING and _MOE_FUSED_TARGETS).
MIXTRAL_TARGET_MAPPING = {
    "gate": "gate.weight",
    "w1": "gate_up_proj",
    "w3": "gate_up_proj",
    "w2": "down_proj",
}
MIXTRAL_FUSED = {"gate_up_proj": ("w1", "w3")}


# How each kind of adapter is named in `trainable_groups`.
_LABELS = {"lora": "lora", "lora-parameter": "lora", "copy": "full copy of"}


class CountError(ValueError):
    """A document whose trainable parameters cannot be worked out (peft would refuse it too)."""


@dataclass(frozen=True)
class BaseTensor:
    """One parameter of the base model as transformers 5.x holds it in memory.

    `kind` says how the stack treats it: "linear" (an nn.Linear weight: bitsandbytes quantizes it, LoRA
    wraps it), "experts" (a fused 3-D expert parameter: not an nn.Linear), "router" (Mixtral's
    MixtralTopKRouter weight), "embedding", "norm", "lm_head" (a Linear that bitsandbytes and
    `lora_target_linear` leave alone).
    """

    module: str
    parameter: str
    shape: tuple[int, ...]
    kind: str
    group: str

    @property
    def name(self) -> str:
        return f"{self.module}.{self.parameter}"

    @property
    def numel(self) -> int:
        product = 1
        for size in self.shape:
            product *= size
        return product


@dataclass(frozen=True)
class Adapter:
    """Trainable parameters a document adds on one base tensor (a LoRA pair, or a full copy)."""

    base: BaseTensor
    rank: int
    params: int
    how: str  # "lora" (module), "lora-parameter" (ParamWrapper), "copy" (modules_to_save)


@dataclass(frozen=True)
class ParameterCount:
    """What a document trains, counted exactly.

    `total` is the base model; `peft_total` is what peft reports as all
    parameters once adapters are attached (base + adapters + modules_to_save copies). `trainable` is
    what has requires_grad. `groups` breaks the base model down, `trainable_groups` the trainable part.
    """

    method: str  # "lora", "qlora" or "full"
    total: int
    trainable: int
    groups: dict[str, int]
    trainable_groups: dict[str, int]
    adapters: tuple[Adapter, ...] = ()
    trained_base: tuple[BaseTensor, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def peft_total(self) -> int:
        return self.total + sum(adapter.params for adapter in self.adapters)

    @property
    def adapter_params(self) -> int:
        return sum(adapter.params for adapter in self.adapters)


@cache
def base_tensors(architecture: Architecture) -> tuple[BaseTensor, ...]:
    """Every parameter of the model, named as transformers 5.x names it in memory."""
    h, i, e = architecture.hidden_size, architecture.intermediate_size, architecture.num_local_experts
    q_out = architecture.num_attention_heads * architecture.attention_head_dim
    kv_out = architecture.num_key_value_heads * architecture.attention_head_dim
    tensors = [
        BaseTensor("model.embed_tokens", "weight", (architecture.vocab_size, h), "embedding", "embeddings")
    ]
    for layer in range(architecture.num_hidden_layers):
        prefix = f"model.layers.{layer}"
        for name, shape in (
            ("q_proj", (q_out, h)),
            ("k_proj", (kv_out, h)),
            ("v_proj", (kv_out, h)),
            ("o_proj", (h, q_out)),
        ):
            tensors.append(BaseTensor(f"{prefix}.self_attn.{name}", "weight", shape, "linear", "attention"))
        if architecture.is_moe:
            tensors += [
                BaseTensor(f"{prefix}.mlp.gate", "weight", (e, h), "router", "router"),
                BaseTensor(f"{prefix}.mlp.experts", "gate_up_proj", (e, 2 * i, h), "experts", "experts"),
                BaseTensor(f"{prefix}.mlp.experts", "down_proj", (e, h, i), "experts", "experts"),
            ]
        else:
            for name, shape in (("gate_proj", (i, h)), ("up_proj", (i, h)), ("down_proj", (h, i))):
                tensors.append(BaseTensor(f"{prefix}.mlp.{name}", "weight", shape, "linear", "mlp"))
        for norm in ("input_layernorm", "post_attention_layernorm"):
            tensors.append(BaseTensor(f"{prefix}.{norm}", "weight", (h,), "norm", "norms"))
    tensors.append(BaseTensor("model.norm", "weight", (h,), "norm", "norms"))
    if not architecture.tie_word_embeddings:
        tensors.append(BaseTensor("lm_head", "weight", (architecture.vocab_size, h), "lm_head", "lm_head"))
    return tuple(tensors)


def count_parameters(architecture: Architecture, document: dict[str, Any]) -> ParameterCount:
    """Total and trainable parameters of `architecture` trained as the axolotl `document` says."""
    tensors = base_tensors(architecture)
    groups = _by_group((tensor.group, tensor.numel) for tensor in tensors)
    total = sum(groups.values())
    adapter_kind = document.get("adapter")
    if not adapter_kind:
        trained = _unfrozen(tensors, document.get("unfrozen_parameters"))
        trainable_groups = _by_group((f"full {tensor.group}", tensor.numel) for tensor in trained)
        return ParameterCount(
            "full", total, sum(t.numel for t in trained), groups, trainable_groups, trained_base=trained
        )
    if adapter_kind not in ("lora", "qlora"):
        raise CountError(f"adapter: {adapter_kind!r} is not modelled (expected lora, qlora or none)")
    notes: list[str] = []
    if document.get("unfrozen_parameters"):
        notes.append("unfrozen_parameters with an adapter is not counted (only with a full fine-tune)")
    for key in ("lora_rank_pattern", "peft_layers_to_transform", "peft_use_dora", "lora_exclude_modules"):
        if document.get(key):
            notes.append(f"{key} is not modelled: counts assume it is absent")
    adapters = _lora_adapters(architecture, tensors, document)
    trainable_groups = _by_group(
        (f"{_LABELS[adapter.how]} {adapter.base.group}", adapter.params) for adapter in adapters
    )
    trainable = sum(adapter.params for adapter in adapters)
    return ParameterCount(
        adapter_kind, total, trainable, groups, trainable_groups, adapters=tuple(adapters), notes=tuple(notes)
    )


def active_parameters(architecture: Architecture) -> int:
    """Parameters one token's forward pass multiplies by: all but the embedding lookup, with only
    `num_experts_per_tok` of the experts (the FLOPs per token of a MoE model)."""
    active = 0
    for tensor in base_tensors(architecture):
        if tensor.kind == "embedding":
            continue
        if tensor.kind == "experts":
            active += tensor.numel * architecture.num_experts_per_tok // architecture.num_local_experts
        else:
            active += tensor.numel
    return active


def _by_group(pairs: Iterable[tuple[str, int]]) -> dict[str, int]:
    groups: dict[str, int] = {}
    for group, numel in pairs:
        groups[group] = groups.get(group, 0) + numel
    return groups


def _unfrozen(tensors: tuple[BaseTensor, ...], patterns: Any) -> tuple[BaseTensor, ...]:
    if not patterns:
        return tensors
    if isinstance(patterns, str):
        patterns = [patterns]
    compiled = []
    for pattern in patterns:
        # axolotl's LayerNamePattern: an optional [start:end] range suffix, dots literal, re.match.
        name_pattern = re.sub(r"\[[0-9]*(?::[0-9]*)?\]$", "", str(pattern))
        compiled.append(re.compile(re.sub(r"\.(?!\+)", r"\\.", name_pattern)))
    return tuple(tensor for tensor in tensors if any(regex.match(tensor.name) for regex in compiled))


def _lora_adapters(
    architecture: Architecture, tensors: tuple[BaseTensor, ...], document: dict[str, Any]
) -> list[Adapter]:
    rank = document.get("lora_r")
    if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
        raise CountError(
            f"lora_r: expected a positive integer with adapter {document.get('adapter')}, got {rank!r}"
        )
    module_targets = _module_targets(architecture, tensors, document)
    parameter_targets = {str(name): rank for name in document.get("lora_target_parameters") or ()}
    if architecture.is_moe:
        module_targets, converted = _convert_mixtral_targets(module_targets, rank)
        parameter_targets = {**parameter_targets, **converted}
    adapters = []
    matched = False
    for tensor in tensors:
        if tensor.kind in ("linear", "lm_head") and _matches(tensor.module, module_targets):
            out_features, in_features = tensor.shape
            adapters.append(Adapter(tensor, rank, rank * (in_features + out_features), "lora"))
            matched = True
            continue
        parameter_rank = next((r for t, r in parameter_targets.items() if _suffix(tensor.name, t)), None)
        if parameter_rank is not None:
            experts, *matrix = tensor.shape if len(tensor.shape) == 3 else (1, *tensor.shape)
            adapters.append(
                Adapter(tensor, parameter_rank, experts * parameter_rank * sum(matrix), "lora-parameter")
            )
            matched = True
    if not matched:
        raise CountError(
            f"LoRA targets {sorted(module_targets) + sorted(parameter_targets)} match no layer of "
            f"{architecture.name} (peft refuses this: 'Target modules ... not found in the base model')"
        )
    for name in document.get("lora_modules_to_save") or ():
        for tensor in tensors:
            if _suffix(tensor.module, str(name)):
                adapters.append(Adapter(tensor, 0, tensor.numel, "copy"))
    return adapters


def _module_targets(
    architecture: Architecture, tensors: tuple[BaseTensor, ...], document: dict[str, Any]
) -> set[str]:
    """Leaf names of the modules LoRA targets, as the list peft receives after axolotl and peft's own
    resolution of a string (`all-linear` or a regex)."""
    raw = document.get("lora_target_modules") or []
    if isinstance(raw, str):
        targets = _resolve_string_target(architecture, tensors, raw)
    else:
        targets = {str(name) for name in raw}
    if document.get("lora_target_linear"):
        # axolotl find_all_linear_names: nn.Linear leaf names, lm_head removed.
        targets |= {tensor.module.rsplit(".", 1)[-1] for tensor in tensors if tensor.kind == "linear"}
    return targets


def _resolve_string_target(
    architecture: Architecture, tensors: tuple[BaseTensor, ...], pattern: str
) -> set[str]:
    """peft's `_resolve_string_target_modules` (and plain regex matching on a dense model)."""
    linear = {tensor.module.rsplit(".", 1)[-1] for tensor in tensors if tensor.kind == "linear"}
    if pattern.lower() == "all-linear":
        return linear | (set(MIXTRAL_TARGET_MAPPING) if architecture.is_moe else set())
    regex = re.compile(pattern)
    keys = {tensor.module for tensor in tensors} | {tensor.name for tensor in tensors}
    if architecture.is_moe:
        # peft probes the checkpoint names the fused experts replaced: ...mlp.experts.w1 and so on.
        keys |= {
            f"{tensor.module}.{old}"
            for tensor in tensors
            if tensor.kind == "experts"
            for old in ("w1", "w2", "w3")
        }
    return {key.rsplit(".", 1)[-1] for key in keys if regex.fullmatch(key)}


def _convert_mixtral_targets(targets: set[str], rank: int) -> tuple[set[str], dict[str, int]]:
    """peft's `_convert_peft_config_moe` for Mixtral: checkpoint names → fused target_parameters."""
    remaining, parameters, present = set(), {}, set()
    for target in targets:
        old = next((name for name in MIXTRAL_TARGET_MAPPING if _suffix(target, name)), None)
        if old is None:
            remaining.add(target)
            continue
        parameters[MIXTRAL_TARGET_MAPPING[old]] = rank
        present.add(old)
    for fused, parts in MIXTRAL_FUSED.items():
        have = present & set(parts)
        if have and have != set(parts):
            raise CountError(
                f"lora_target_modules: cannot convert {', '.join(sorted(have))} without also "
                f"targeting {', '.join(sorted(set(parts) - have))}: they are fused into {fused} "
                "(peft refuses it)"
            )
        if have:
            parameters[fused] = rank * len(parts)
    return remaining, parameters


def _suffix(key: str, target: str) -> bool:
    return key == target or key.endswith("." + target)


def _matches(module: str, targets: set[str]) -> bool:
    return any(_suffix(module, target) for target in targets)
