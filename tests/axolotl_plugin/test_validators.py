"""Each built-in axolotl validator fires on a config that should trip it and stays quiet on one that
should not. Configs are written out by hand, the way users write them, not rendered from our recipes."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mft_recipes.host import get_registry
from mft_recipes.validation import validate_document

MIXTRAL = "mistralai/Mixtral-8x7B-v0.1"
MISTRAL = "mistralai/Mistral-7B-v0.3"

# Close to axolotl's own examples/mistral/mixtral-qlora.yml of 2024-2026: it trains no expert weight.
AXOLOTL_EXAMPLE_MIXTRAL_QLORA = """\
base_model: mistralai/Mixtral-8x7B-v0.1
trust_remote_code: true
load_in_4bit: true
datasets:
  - path: tatsu-lab/alpaca
    type: alpaca
val_set_size: 0.0
output_dir: ./outputs/qlora-out
adapter: qlora
sequence_len: 4096
sample_packing: true
pad_to_sequence_len: true
lora_r: 32
lora_alpha: 16
lora_dropout: 0.05
lora_target_linear: true
gradient_accumulation_steps: 4
micro_batch_size: 2
num_epochs: 1
optimizer: adamw_bnb_8bit
lr_scheduler: cosine
learning_rate: 0.0002
bf16: auto
gradient_checkpointing: true
flash_attention: true
"""


def base_config(**changes: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "base_model": MIXTRAL,
        "load_in_4bit": True,
        "adapter": "qlora",
        "quantize_moe_experts": True,
        "lora_r": 16,
        "lora_alpha": 32,
        "lora_dropout": 0.0,
        "lora_target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "w1", "w2", "w3"],
        "datasets": [{"path": "train.jsonl", "type": "alpaca"}],
        "sequence_len": 4096,
        "micro_batch_size": 1,
        "gradient_accumulation_steps": 8,
        "num_epochs": 1,
        "learning_rate": 0.0002,
        "output_dir": "./out",
    }
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    return config


def codes(config: dict[str, Any], gpus: int | None = None) -> dict[str, str]:
    problems = validate_document(config, "axolotl", get_registry(), gpus=gpus)
    return {problem.code: problem.severity for problem in problems if problem.source != "schema"}


def test_a_correct_mixtral_expert_qlora_config_has_no_findings() -> None:
    assert codes(base_config()) == {}


def test_qlora_without_4bit_is_an_error() -> None:
    assert codes(base_config(load_in_4bit=None, quantize_moe_experts=None))["qlora-without-4bit"] == "error"
    assert "qlora-without-4bit" not in codes(base_config())


def test_mixtral_lora_target_linear_alone_trains_no_experts() -> None:
    config = base_config(lora_target_modules=None, lora_target_linear=True, quantize_moe_experts=None)
    found = validate_document(config, "axolotl", get_registry())
    [problem] = [p for p in found if p.code == "moe-experts-not-trained"]
    assert problem.is_error
    assert problem.path == ("lora_target_linear",)
    assert "lora_target_linear adapts the attention projections only" in problem.message
    assert "w1, w2, w3" in problem.message


def test_mixtral_attention_only_targets_train_no_experts() -> None:
    attention_only = base_config(lora_target_modules=["q_proj", "v_proj"])
    assert codes(attention_only)["moe-experts-not-trained"] == "error"


def test_expert_target_parameters_count_as_expert_training() -> None:
    explicit = base_config(
        lora_target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
        lora_target_parameters=["mlp.experts.gate_up_proj", "mlp.experts.down_proj"],
    )
    assert "moe-experts-not-trained" not in codes(explicit)


def test_attention_only_lora_on_dense_mistral_is_fine() -> None:
    dense = base_config(
        base_model=MISTRAL, quantize_moe_experts=None, lora_target_modules=["q_proj", "v_proj"]
    )
    assert codes(dense) == {}


def test_expert_targets_with_dropout_are_an_error() -> None:
    assert codes(base_config(lora_dropout=0.05))["expert-lora-dropout"] == "error"
    dense_with_dropout = base_config(
        base_model=MISTRAL,
        quantize_moe_experts=None,
        lora_target_modules=["q_proj", "gate_proj"],
        lora_dropout=0.05,
    )
    assert "expert-lora-dropout" not in codes(dense_with_dropout)


@pytest.mark.parametrize("targets", [["q_proj", "w1", "w2"], ["q_proj", "w3"]])
def test_w1_without_w3_is_an_error(targets: list[str]) -> None:
    assert codes(base_config(lora_target_modules=targets))["w1-without-w3"] == "error"


def test_w2_alone_is_allowed() -> None:
    assert "w1-without-w3" not in codes(base_config(lora_target_modules=["q_proj", "w2"]))


def test_expert_names_on_dense_mistral_match_nothing() -> None:
    config = base_config(base_model=MISTRAL, quantize_moe_experts=None)
    found = validate_document(config, "axolotl", get_registry())
    [problem] = [p for p in found if p.code == "targets-match-nothing"]
    assert "gate_proj, up_proj, down_proj" in problem.message


def test_mixtral_4bit_without_quantize_moe_experts_warns_with_the_expert_size() -> None:
    found = validate_document(base_config(quantize_moe_experts=None), "axolotl", get_registry())
    [problem] = [p for p in found if p.code == "moe-experts-16bit"]
    assert problem.severity == "warning"
    # Mixtral-8x7B-v0.1's config.json: 32 layers × 8 experts × 3 matrices (w1, w2, w3) × hidden 4096 ×
    # intermediate 14336 = 45.1 B parameters.
    assert "45.1 B parameters" in problem.message
    assert "set quantize_moe_experts: true" in problem.message


def test_on_a_cpu_run_the_16bit_experts_warning_speaks_of_the_ram_not_of_quantize_moe_experts() -> None:
    """The CPU profile leaves out quantize_moe_experts on purpose (it needs CUDA): telling the user to set
    it contradicts the run. On a CPU run (float32, no bf16) the experts take 4 bytes a parameter of RAM."""
    from tests.refusals import mft

    result = mft("render", "mixtral-moe", "dataset=train.jsonl", "device=cpu")
    assert result.exit_code == 0, result.output
    [warning] = [line for line in result.stderr.splitlines() if "[moe-experts-16bit]" in line]
    assert "this CPU run (device=cpu) leaves out quantize_moe_experts, which needs CUDA" in warning
    assert "45.1 B parameters) stay float32, 168 GiB of RAM per process" in warning  # 45.1e9 × 4 / 2**30
    assert "set quantize_moe_experts" not in warning
    assert "quantize_moe_experts" not in result.stdout


def test_the_16bit_experts_advice_leads_to_a_config_axolotl_accepts() -> None:
    """On axolotl's Mixtral example (lora_target_linear), setting quantize_moe_experts alone gives a config
    axolotl refuses (check_quantize_moe_experts); the advice says what else to change, and following it
    all leaves nothing for validate to refuse."""
    example = yaml.safe_load(AXOLOTL_EXAMPLE_MIXTRAL_QLORA)
    [advice] = [
        p for p in validate_document(example, "axolotl", get_registry()) if p.code == "moe-experts-16bit"
    ]
    assert "replace lora_target_linear" in advice.message
    assert "lora_target_modules: [q_proj, k_proj, v_proj, o_proj, w1, w2, w3]" in advice.message

    only_the_flag = {**example, "quantize_moe_experts": True}
    refused = [p for p in validate_document(only_the_flag, "axolotl", get_registry()) if p.is_error]
    assert "axolotl-check-quantize-moe-experts" in {p.code for p in refused}
    assert any("lora_target_linear is not compatible with quantize_moe_experts" in p.message for p in refused)

    advised = {
        **only_the_flag,
        "lora_dropout": 0,
        "lora_target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "w1", "w2", "w3"],
    }
    del advised["lora_target_linear"]
    assert [str(p) for p in validate_document(advised, "axolotl", get_registry())] == []


ZERO3 = {"zero_optimization": {"stage": 3}, "train_batch_size": "auto"}


def test_zero3_with_4bit_is_an_error_and_zero2_is_not() -> None:
    assert codes(base_config(deepspeed=ZERO3))["zero3-with-quantized-base"] == "error"
    zero2 = {"zero_optimization": {"stage": 2}}
    assert "zero3-with-quantized-base" not in codes(base_config(deepspeed=zero2))


def test_zero3_from_a_deepspeed_file_in_the_launch_directory(tmp_path: Path) -> None:
    (tmp_path / "zero3.json").write_text(json.dumps(ZERO3))
    config = base_config(deepspeed="zero3.json")
    problems = validate_document(config, "axolotl", get_registry(), cwd=str(tmp_path))
    assert "zero3-with-quantized-base" in {problem.code for problem in problems}


def test_unreadable_deepspeed_path_is_reported(tmp_path: Path) -> None:
    config = base_config(deepspeed="missing.json")
    problems = validate_document(config, "axolotl", get_registry(), file=str(tmp_path / "cfg.yml"))
    assert "deepspeed-unreadable" in {problem.code for problem in problems}


def test_inline_deepspeed_section_is_checked_against_its_schema() -> None:
    bad = {"zero_optimization": {"stage": 5, "overlap_com": True}}
    problems = validate_document(
        base_config(load_in_4bit=None, adapter="lora", deepspeed=bad), "axolotl", get_registry()
    )
    paths = {problem.path for problem in problems if problem.source == "deepspeed-section"}
    assert ("deepspeed", "zero_optimization", "stage") in paths
    assert ("deepspeed", "zero_optimization", "overlap_com") in paths


def test_deepspeed_batch_values_that_disagree_with_the_config() -> None:
    section: dict[str, Any] = copy.deepcopy(ZERO3)
    section.update({"train_micro_batch_size_per_gpu": 4, "train_batch_size": 20})
    found = validate_document(
        base_config(adapter="lora", load_in_4bit=None, quantize_moe_experts=None, deepspeed=section),
        "axolotl",
        get_registry(),
    )
    batch = [problem for problem in found if problem.code == "batch-mismatch"]
    assert {problem.path for problem in batch} == {
        ("deepspeed", "train_micro_batch_size_per_gpu"),
        ("deepspeed", "train_batch_size"),
    }


# DeepSpeed's own rule (deepspeed/runtime/config.py, _batch_assertion): train_batch_size = micro batch ×
# gradient_accumulation_steps × GPUs. 2 × 4 × 2 GPUs = 16; the truth tier asks DeepSpeed itself.
DEEPSPEED_FILE = {
    "zero_optimization": {"stage": 2},
    "train_micro_batch_size_per_gpu": 2,
    "gradient_accumulation_steps": 4,
    "train_batch_size": 16,
}


def test_a_deepspeed_file_gets_the_batch_check_of_a_section_in_a_config(tmp_path: Path) -> None:
    from tests.refusals import mft

    path = tmp_path / "ds.json"
    path.write_text(json.dumps(DEEPSPEED_FILE, indent=2))
    assert mft("validate", "--gpus", "2", str(path)).exit_code == 0
    refused = mft("validate", "--gpus", "4", str(path))
    assert refused.exit_code == 1, refused.output
    assert (
        f"{path}:7: error: train_batch_size: DeepSpeed's train_batch_size 16 is not "
        "train_micro_batch_size_per_gpu × gradient_accumulation_steps (2 × 4) × 4 GPUs = 32" in refused.stderr
    )
    assert "[batch-mismatch]" in refused.stderr
    path.write_text(json.dumps({**DEEPSPEED_FILE, "train_batch_size": 20}))
    assert "for any whole number of GPUs" in mft("validate", str(path)).stderr
    path.write_text(
        json.dumps({**DEEPSPEED_FILE, "gradient_accumulation_steps": 128, "train_batch_size": "auto"})
    )
    assert (
        "warning: gradient_accumulation_steps: micro batch 2 × gradient_accumulation_steps 128 × 8 GPUs"
        in (mft("validate", "--gpus", "8", str(path)).stderr)
    )
    section = {key: value for key, value in DEEPSPEED_FILE.items() if key != "train_micro_batch_size_per_gpu"}
    config = base_config(
        adapter="lora",
        load_in_4bit=None,
        quantize_moe_experts=None,
        micro_batch_size=2,
        gradient_accumulation_steps=4,
        deepspeed=section,
    )
    assert "batch-mismatch" not in codes(config, gpus=2)
    assert codes(config, gpus=4)["batch-mismatch"] == "error"


def test_a_global_batch_that_makes_no_sense_warns_only_with_the_gpus_counted() -> None:
    config = base_config(micro_batch_size=8, gradient_accumulation_steps=32)
    assert "batch-too-large" not in codes(config, gpus=1)
    assert codes(config, gpus=8)["batch-too-large"] == "warning"


def test_validate_names_file_line_and_key_for_axolotls_own_mixtral_example(tmp_path: Path) -> None:
    path = tmp_path / "mixtral-qlora.yml"
    path.write_text(AXOLOTL_EXAMPLE_MIXTRAL_QLORA)
    result = subprocess.run(
        [sys.executable, "-m", "mft_recipes", "validate", "--json", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    problems = json.loads(result.stdout)["files"][0]["problems"]
    by_code = {problem["code"]: problem for problem in problems}
    expected_line = AXOLOTL_EXAMPLE_MIXTRAL_QLORA.splitlines().index("lora_target_linear: true") + 1
    assert by_code["moe-experts-not-trained"]["line"] == expected_line
    assert by_code["moe-experts-not-trained"]["path"] == "lora_target_linear"
    assert by_code["moe-experts-16bit"]["severity"] == "warning"


def test_our_mixtral_recipe_passes_the_validators_that_axolotls_example_fails() -> None:
    from mft_recipes.render import render_recipe

    rendered = render_recipe(
        get_registry().recipes["mixtral-moe"], {"dataset": "train.jsonl"}, get_registry()
    )
    assert rendered.problems == []
    example = yaml.safe_load(AXOLOTL_EXAMPLE_MIXTRAL_QLORA)
    assert "moe-experts-not-trained" in codes(example)


@pytest.mark.parametrize(("peft", "warned"), [("0.20.0", True), ("0.21.2", False), (None, False)])
def test_zero3_expert_lora_warns_when_the_installed_peft_cannot_wrap_partitioned_experts(
    monkeypatch: pytest.MonkeyPatch, peft: str | None, warned: bool
) -> None:
    """The installed peft is stood in for here (this tier has none); the truth tier checks the same
    warning against the real peft of each axolotl it installs."""
    from mft_recipes_axolotl import validators

    monkeypatch.setattr(validators, "installed_version", lambda distribution: peft)
    config = base_config(load_in_4bit=None, adapter="lora", quantize_moe_experts=None, deepspeed=ZERO3)
    assert ("zero3-expert-lora-needs-peft" in codes(config)) is warned
    attention_only = base_config(
        base_model=MISTRAL,
        load_in_4bit=None,
        adapter="lora",
        quantize_moe_experts=None,
        deepspeed=ZERO3,
        lora_target_modules=["q_proj", "v_proj"],
    )
    assert "zero3-expert-lora-needs-peft" not in codes(attention_only)


@pytest.mark.parametrize(("deepspeed", "warned"), [("0.18.9", True), ("0.19.8", False), (None, False)])
def test_zero3_mixtral_warns_when_the_installed_deepspeed_can_load_its_experts_wrong(
    monkeypatch: pytest.MonkeyPatch, deepspeed: str | None, warned: bool
) -> None:
    """The installed DeepSpeed is stood in for here (this tier has none); the truth tier checks the same
    warning against the real DeepSpeed of each axolotl it installs."""
    from mft_recipes_axolotl import validators

    monkeypatch.setattr(
        validators,
        "installed_version",
        lambda distribution: deepspeed if distribution == "deepspeed" else None,
    )
    full = base_config(load_in_4bit=None, adapter=None, quantize_moe_experts=None, deepspeed=ZERO3)
    assert ("zero3-moe-load-needs-deepspeed" in codes(full)) is warned
    dense = base_config(
        base_model=MISTRAL, load_in_4bit=None, adapter=None, quantize_moe_experts=None, deepspeed=ZERO3
    )
    assert "zero3-moe-load-needs-deepspeed" not in codes(dense)


@pytest.mark.parametrize(
    ("base_model", "architecture", "expert_size"),
    [
        # The id axolotl's own Mixtral 8x22B examples use (mixtral-8x22b-qlora-fsdp.yml): the community's
        # conversion of the torrent checkpoint, Mistral's layers with the 32000-token vocabulary.
        ("mistral-community/Mixtral-8x22B-v0.1", "Mixtral-8x22B-v0.1-community", "135.3 B"),
        ("mistralai/Mixtral-8x22B-Instruct-v0.1", "Mixtral-8x22B-v0.1", "135.3 B"),
        ("mistralai/Mixtral-8x7B-Instruct-v0.1", "Mixtral-8x7B-v0.1", "45.1 B"),
    ],
)
def test_the_mirrors_and_instruct_repositories_are_recognised(
    base_model: str, architecture: str, expert_size: str
) -> None:
    config = base_config(base_model=base_model, quantize_moe_experts=None)
    [problem] = [
        p for p in validate_document(config, "axolotl", get_registry()) if p.code == "moe-experts-16bit"
    ]
    assert f"{architecture}'s fused experts ({expert_size} parameters" in problem.message
