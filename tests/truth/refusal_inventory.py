"""Every refusal in axolotl's validators, accounted for: restated by the axolotl plugin, or deliberately not.

`raise_sites()` reads the installed axolotl's source (no import): every `raise` in its config models
(axolotl/utils/schemas/) and in its plugins' argument models (axolotl/integrations/*/args.py). Each must be
restated by a rule of plugins/mft_recipes_axolotl/refusals/ (same validator,
axolotl's words), or be listed in NOT_RESTATED with the reason fast `validate` cannot judge it from the
config and the GPUs it is told of.

    python -m tests.truth.refusal_inventory   # in an axolotl venv: the counts, and what is not restated
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from mft_recipes_axolotl.refusals import REFUSALS, Refusal

TORCH = (
    "axolotl 0.19 requires torch 2.11 to 2.13 (its pyproject.toml), newer than every version this checks for"
)

# (axolotl's validator, a fragment of its message): why fast `validate` does not restate it.
NOT_RESTATED = {
    ("check_npu_config", "not supported on Ascend NPU"): "Ascend NPUs: checked only where torch finds one "
    "on the machine axolotl runs on; the GPUs validate is told of (--gpu) are NVIDIA's",
    (
        "check_npu_config",
        "currently not supported in Ascend npu, please disable this",
    ): "Ascend NPUs (as above)",
    ("check_npu_config", "currently not supported in Ascend npu, choose another"): "Ascend NPUs (as above)",
    ("check_npu_config", "Quantification is currently not supported in Ascend npu"): "Ascend NPUs (as above)",
    ("check_npu_config", "tf32 dtype is currently not supported in Ascend npu"): "Ascend NPUs (as above)",
    (
        "check_quantize_moe_experts",
        "requires CUDA (not compatible with ROCm",
    ): "a compute capability that is not CUDA's (ROCm): the GPUs validate is told of (--gpu) are NVIDIA's",
    (
        "check_flash_attn_available",
        "no flash-attn build is available",
    ): "the flash-attn package and the kernels "
    "hub of the machine axolotl runs on (checked only where CUDA is available)",
    ("check_mistral_common_import", "mistral-common is required"): "mistral-common missing from the machine: "
    "axolotl 0.19 installs it as a dependency",
    (
        "check_context_parallel_size",
        "ring_flash_attn is not installed",
    ): "whether the ring-flash-attn package is "
    "installed next to axolotl (an optional extra); validate cannot see the training machine's packages",
    (
        "check_fp8",
        "missing one of ms-amp, transformers-engine or torchao",
    ): "fp8 packages missing: axolotl 0.19 installs torchao as a dependency on Linux x86-64",
    ("check_fp8_attention_preflight", "requires PyTorch >= 2.11.0"): TORCH,
    ("check_adopt_torch_version", "torch version < 2.5.1"): TORCH,
    ("check_flex_torch_version", "torch version < 2.6.0"): TORCH,
    ("check_qat_config", "torch version < 2.6.0"): TORCH,
    ("check_fsdp_torch_version", "torch version < 2.7.0"): TORCH,
    ("check_tensor_parallel_optimizer", "tensor_parallel_size is not supported with"): "never runs: axolotl "
    "0.19's DistributedValidationMixin is not a base of its config model (ValidationMixin leaves it out)",
}


@dataclass(frozen=True)
class RaiseSite:
    """One `raise` in axolotl's source: where, in which function (the validator), and the static text of
    its message ("{}" where axolotl formats a value in)."""

    file: str
    line: int
    validator: str
    message: str

    @property
    def opening(self) -> str:
        return opening(self.message)


def opening(message: str) -> str:
    """The first run of a message's own words (8 characters or more) between the values it formats in
    (`{}`, `{name}`), on its first line."""
    pieces = (piece.strip() for piece in re.split(r"\{[^{}]*\}", message.split("\n", 1)[0]))
    return next((piece for piece in pieces if len(piece) >= 8), "")


def axolotl_source() -> Path | None:
    """The installed axolotl package's folder, found without importing it; None when not installed."""
    spec = importlib.util.find_spec("axolotl")
    return (
        Path(next(iter(spec.submodule_search_locations)))
        if spec and spec.submodule_search_locations
        else None
    )


def raise_sites(root: Path) -> list[RaiseSite]:
    files = sorted(root.glob("utils/schemas/*.py")) + sorted(root.glob("integrations/*/args.py"))
    sites = []
    for file in files:
        tree = ast.parse(file.read_text(encoding="utf-8"))
        for function in (node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)):
            named = {
                target.id: node.value
                for node in ast.walk(function)
                if isinstance(node, ast.Assign)
                for target in node.targets
                if isinstance(target, ast.Name)
            }
            for node in ast.walk(function):
                if isinstance(node, ast.Raise) and node.exc is not None:
                    raised = named.get(node.exc.id, node.exc) if isinstance(node.exc, ast.Name) else node.exc
                    message = _text(raised.args[0]) if isinstance(raised, ast.Call) and raised.args else ""
                    sites.append(RaiseSite(str(file.relative_to(root)), node.lineno, function.name, message))
    return sites


def _text(node: ast.expr) -> str:
    """The static text of a message expression: literals as they are, every formatted value as {}."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_text(value) if isinstance(value, ast.Constant) else "{}" for value in node.values)
    if isinstance(node, ast.BinOp):
        return _text(node.left) + _text(node.right)
    return "{}"


def restated_by(site: RaiseSite) -> list[Refusal]:
    """The rules that restate the site: the same validator, and the same opening words (a rule may stop
    before a tail that describes axolotl's machine, such as its installed transformers)."""

    def same_words(refusal: Refusal) -> bool:
        said = opening(refusal.says)
        shorter = min(len(said), len(site.opening))
        return shorter >= 8 and said[:shorter] == site.opening[:shorter]

    return [refusal for refusal in REFUSALS if refusal.validator == site.validator and same_words(refusal)]


def not_restated(site: RaiseSite) -> list[tuple[str, str]]:
    return [key for key in NOT_RESTATED if key[0] == site.validator and key[1] in site.message]


def main() -> int:
    root = axolotl_source()
    if root is None:
        print("axolotl is not installed here", file=sys.stderr)
        return 1
    sites = raise_sites(root)
    restated = [site for site in sites if restated_by(site)]
    skipped = [site for site in sites if not_restated(site)]
    print(f"{len(sites)} raise sites: {len(restated)} restated, {len(skipped)} not restated")
    for site in sites:
        if not restated_by(site) and not not_restated(site):
            print(f"  unaccounted: {site.file}:{site.line} {site.validator}: {site.message[:100]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
