"""`plan` on several machines: ZeRO-3 divides what it shards by the world size (nodes × GPUs per node) and
nothing else, the traffic between nodes is ZeRO-3's 3Ψ-per-step volume against the network, worked out
here by hand from the published parameter counts, and the options that name the hardware combine or are
refused as docs/plan.md says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from mft_recipes_plan.command import plan_command

from mft_recipes.schemas import check_against_schema
from tests.refusals import assert_refused

GIB = 2**30
# Mixtral 8x22B, counted from its published config.json (tests/plan/test_counts.py) and by peft on the
# meta device in the axolotl tier; the LoRA recipe's adapters at r=16 on attention and the experts.
MIXTRAL_8X22B = 140_630_071_296
MIXTRAL_8X22B_LORA = 754_188_288
# What ZeRO-3 shards, in bytes per parameter of what it applies to (DeepSpeed's estimator: 16-bit
# weights 2, fp32 gradients 4, fp32 master weights and two Adam states 12).
SHARDED_FULL = {"trainable weights": 2, "gradients": 4, "optimizer states": 12}


def plan(*args: str) -> Result:
    return CliRunner().invoke(plan_command, list(args))


def plan_json(*args: str) -> dict:
    result = plan(*args, "--json")
    assert result.exit_code == 0, result.output
    data: dict = json.loads(result.stdout)
    assert check_against_schema(data, "plan") == []
    return data


@pytest.mark.parametrize("nodes", [4, 6, 8, 16])
def test_a_full_fine_tune_shards_its_model_states_over_every_gpu_of_every_node(nodes: int) -> None:
    data = plan_json("mixtral-8x22b-full", "--nodes", str(nodes))
    world = nodes * 8
    assert (data["nodes"], data["gpus_per_node"], data["gpus"]) == (nodes, 8, world)
    for term, per_parameter in SHARDED_FULL.items():
        assert data["memory_breakdown_gib"][term] == pytest.approx(
            MIXTRAL_8X22B * per_parameter / world / GIB, abs=1e-3
        ), term


def test_lora_shards_the_frozen_base_over_the_world_size() -> None:
    data = plan_json("mixtral-8x22b", "--gpu", "a100-40gb", "--nodes", "2", "--gpus-per-node", "8")
    assert data["gpus"] == 16
    assert data["memory_breakdown_gib"]["weights 16-bit"] == pytest.approx(
        MIXTRAL_8X22B * 2 / 16 / GIB, abs=1e-3
    )


def test_only_the_world_size_changes_the_memory_not_how_it_is_spread() -> None:
    one_machine = plan_json("mixtral-8x22b-full", "--gpus", "48", "--gpus-per-node", "48")
    six_nodes = plan_json("mixtral-8x22b-full")
    three_nodes_of_16 = plan_json("mixtral-8x22b-full", "--nodes", "3", "--gpus-per-node", "16")
    assert one_machine["memory_breakdown_gib"] == six_nodes["memory_breakdown_gib"]
    assert three_nodes_of_16["memory_breakdown_gib"] == six_nodes["memory_breakdown_gib"]
    # What is not sharded (a step's activations and logits) does not depend on the world size at all.
    four_nodes = plan_json("mixtral-8x22b-full", "--nodes", "4")
    for term in ("activations", "logits", "ZeRO-3 gathered layer"):
        assert four_nodes["memory_breakdown_gib"][term] == six_nodes["memory_breakdown_gib"][term]


def test_the_full_recipe_names_the_fewest_nodes_that_fit() -> None:
    data = plan_json("mixtral-8x22b-full")
    assert data["fits"] is True and data["nodes"] == data["nodes_needed"] == 6
    fewer = plan("mixtral-8x22b-full", "--nodes", "5", "--check")
    assert_refused(fewer, 1, "5 nodes × 8× h100-80gb", "6 nodes of 8 would fit")


def test_mixtral_8x22b_lora_fits_two_nodes_of_eight_a100_40gb() -> None:
    data = plan_json("mixtral-8x22b", "--gpu", "a100-40gb", "--nodes", "2", "--gpus-per-node", "8")
    assert data["fits"] is True and data["memory_per_gpu_gib"] <= 40
    one_node = plan_json("mixtral-8x22b", "--gpu", "a100-40gb")
    assert one_node["fits"] is False and one_node["nodes_needed"] == 2


def test_the_traffic_between_nodes_by_hand() -> None:
    data = plan_json("mixtral-8x22b-full", "--tokens", "100M", "--mfu", "0.2")
    traffic = data["communication"]
    # Every parameter all-gathered before forward, before backward and again for the checkpointed
    # recompute, and every gradient reduce-scattered: (3 + 1) × 140.6 B × 2 bytes (bf16) per micro batch,
    # 2 micro batches per step (the recipe's accumulation), each GPU sending 47/48 of it.
    on_the_wire = (3 + 1) * MIXTRAL_8X22B * 2 * 2 * 47 / 48
    assert traffic["gb_per_gpu_per_step"] == pytest.approx(on_the_wire / 1e9, abs=1e-3)
    assert traffic["seconds_per_step"] == pytest.approx(on_the_wire * 8 / 400e9, abs=1e-3)
    # Compute: 2 × 4096 tokens per GPU per step at 20% of 989 TFLOP/s.
    compute = 2 * 4096 * data["flops_per_token"] / (989e12 * 0.2)
    assert traffic["compute_seconds_per_step"] == pytest.approx(compute, abs=1e-3)
    assert traffic["bound"] == "communication"
    # The step takes the longer of the two (overlapped), so the run takes traffic / compute longer.
    compute_hours = data["training_tokens"] * data["flops_per_token"] / (48 * 989e12 * 0.2) / 3600
    assert data["time_hours"] == pytest.approx(compute_hours * on_the_wire * 8 / 400e9 / compute, rel=1e-3)
    assert any(note.startswith("communication-bound") for note in data["notes"])


def test_lora_gathers_the_frozen_base_and_reduces_only_the_adapters() -> None:
    data = plan_json("mixtral-8x22b", "--gpu", "a100-40gb", "--nodes", "2", "--gpus-per-node", "8")
    traffic = data["communication"]
    gathered = MIXTRAL_8X22B + MIXTRAL_8X22B_LORA
    assert (traffic["gathered_params"], traffic["reduced_params"]) == (gathered, MIXTRAL_8X22B_LORA)
    on_the_wire = (3 * gathered + MIXTRAL_8X22B_LORA) * 2 * 2 * 15 / 16
    assert traffic["gb_per_gpu_per_step"] == pytest.approx(on_the_wire / 1e9, abs=1e-3)
    assert traffic["interconnect_gbps"] == 200


def test_a_faster_network_can_make_a_run_compute_bound() -> None:
    slow = plan_json("mistral-7b-full", "--nodes", "2", "--interconnect-gbps", "50", "--tokens", "1B")
    fast = plan_json("mistral-7b-full", "--nodes", "2", "--interconnect-gbps", "3200", "--tokens", "1B")
    assert slow["communication"]["bound"] == "communication" and fast["communication"]["bound"] == "compute"
    assert slow["communication"]["interconnect_source"] == "given"
    assert fast["time_hours"] < slow["time_hours"]
    # Compute-bound, the network adds nothing to the time: it is the single-node formula on 16 GPUs.
    assert fast["time_hours"] == plan_json("mistral-7b-full", "--gpus", "16", "--tokens", "1B")["time_hours"]


def test_one_machine_has_no_traffic_between_nodes() -> None:
    assert plan_json("mistral-7b-full")["communication"] is None
    assert plan_json("mistral-7b-full", "--gpus", "16")["communication"] is None


def test_a_gpu_without_a_network_figure_says_so(tmp_path: Path) -> None:
    table = tmp_path / "gpus.yaml"
    table.write_text("gpus:\n  my-card: {memory_gib: 80, bf16_tflops: 500, usd_per_hour: 2}\n")
    data = plan_json("mistral-7b-full", "--gpu-table", str(table), "--gpu", "my-card", "--nodes", "2")
    assert data["communication"] is None
    assert any("--interconnect-gbps" in note for note in data["notes"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("gpus:\n  x: {memory_gib: 1, bf16_tflops: 1, usd_per_hour: 1, interconnect_gbps: fast}\n")
    assert_refused(plan("mistral-7b-full", "--gpu-table", str(bad)), 1, "gpus.x.interconnect_gbps")


@pytest.mark.parametrize(
    ("options", "nodes", "per_node"),
    [
        ((), 6, 8),
        (("--nodes", "4"), 4, 8),
        (("--gpus-per-node", "4"), 6, 4),
        (("--gpus", "32"), 4, 8),
        (("--gpus", "32", "--nodes", "2"), 2, 16),
        (("--gpus", "32", "--gpus-per-node", "4"), 8, 4),
        (("--gpus", "32", "--nodes", "4", "--gpus-per-node", "8"), 4, 8),
    ],
)
def test_gpus_nodes_and_gpus_per_node_combine(options: tuple[str, ...], nodes: int, per_node: int) -> None:
    data = plan_json("mixtral-8x22b-full", *options)
    assert (data["nodes"], data["gpus_per_node"]) == (nodes, per_node)


def test_gpus_alone_stays_one_machine_on_a_single_node_recipe() -> None:
    data = plan_json("mistral-7b-full", "--gpus", "16")
    assert (data["nodes"], data["gpus_per_node"]) == (1, 16)


@pytest.mark.parametrize(
    "options",
    [
        ("--gpus", "12"),  # not a whole number of the recipe's 8-GPU nodes
        ("--gpus", "32", "--nodes", "3"),
        ("--gpus", "32", "--nodes", "2", "--gpus-per-node", "8"),
    ],
)
def test_an_inconsistent_world_size_is_a_usage_error(options: tuple[str, ...]) -> None:
    assert_refused(plan("mixtral-8x22b-full", *options), 2, f"--gpus {options[1]} is not")
