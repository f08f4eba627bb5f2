"""ZeRO-3's traffic between machines in one optimizer step, against the network that carries it
(docs/plan.md, "Several nodes").

Volume. ZeRO-3 partitions every parameter over all ranks, so each module's parameters are all-gathered
before its forward and again before its backward, and the gradients are reduce-scattered: 3Ψ per step for
Ψ parameters against data parallelism's 2Ψ (Rajbhandari et al., "ZeRO: Memory Optimizations Toward
Training Trillion Parameter Models", SC 2020, section 7.2.2). With gradient checkpointing the recompute
runs each layer's forward again inside backward, and DeepSpeed gathers its parameters a third time: it
releases a module's parameters after every forward (`PartitionedParameterCoordinator.release_sub_module`)
unless `stage3_max_reuse_distance` keeps them, and the recipes' sections set it to 0. The frozen base of
a LoRA run is partitioned and gathered like the rest; only the trained parameters' gradients are
reduce-scattered. All of it happens for every micro batch, so a step moves it
`gradient_accumulation_steps` times, in the training precision (2 bytes in bf16).

Time. A ring all-gather or reduce-scatter of S bytes over n ranks sends and receives S·(n−1)/n bytes per
rank; NVIDIA's nccl-tests call S·(n−1)/n / time the "bus bandwidth", which is what the slowest link
carries (nccl-tests, doc/PERFORMANCE.md). Across machines that link is the GPU's share of the inter-node
network (NCCL runs a ring per NIC), the GPU table's `interconnect_gbps`. Within one machine the traffic
stays on NVLink or PCIe and is not counted here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mft_recipes_plan.counts import ParameterCount
from mft_recipes_plan.memory import TrainingSetup


@dataclass(frozen=True)
class Communication:
    """One optimizer step of a ZeRO-3 run over several machines: what each GPU sends across them and how
    long that takes, beside how long the step computes."""

    nodes: int
    world_size: int
    interconnect_gbps: float
    interconnect_source: str
    gathers_per_micro_batch: int
    gathered_params: int
    reduced_params: int
    micro_batches: int
    bytes_per_step: float
    seconds_per_step: float
    compute_seconds_per_step: float

    @property
    def bound(self) -> str:
        """What sets the pace: "communication" when moving the step's traffic takes longer than computing it."""
        return "communication" if self.seconds_per_step > self.compute_seconds_per_step else "compute"

    @property
    def slowdown(self) -> float:
        """How much longer a step takes than its compute alone, with the two overlapped (DeepSpeed's
        `overlap_comm` and prefetching): the longer of the two over the compute."""
        return max(self.seconds_per_step, self.compute_seconds_per_step) / self.compute_seconds_per_step

    def as_json(self) -> dict[str, Any]:
        return {
            "nodes": self.nodes,
            "world_size": self.world_size,
            "interconnect_gbps": self.interconnect_gbps,
            "interconnect_source": self.interconnect_source,
            "gathers_per_micro_batch": self.gathers_per_micro_batch,
            "gathered_params": self.gathered_params,
            "reduced_params": self.reduced_params,
            "micro_batches_per_step": self.micro_batches,
            "gb_per_gpu_per_step": round(self.bytes_per_step / 1e9, 3),
            "seconds_per_step": round(self.seconds_per_step, 4),
            "compute_seconds_per_step": round(self.compute_seconds_per_step, 4),
            "bound": self.bound,
        }


def zero3_communication(
    counts: ParameterCount,
    setup: TrainingSetup,
    *,
    nodes: int,
    world_size: int,
    interconnect_gbps: float,
    interconnect_source: str,
    compute_seconds_per_step: float,
) -> Communication:
    """The inter-node traffic of one ZeRO-3 step of `setup` on `world_size` GPUs over `nodes` machines."""
    gathers = 2 + (1 if setup.gradient_checkpointing else 0)
    gathered = counts.total + (counts.adapter_params if counts.method != "full" else 0)
    per_micro_batch = (gathers * gathered + counts.trainable) * setup.compute_bytes
    on_the_wire = per_micro_batch * setup.gradient_accumulation_steps * (world_size - 1) / world_size
    return Communication(
        nodes=nodes,
        world_size=world_size,
        interconnect_gbps=interconnect_gbps,
        interconnect_source=interconnect_source,
        gathers_per_micro_batch=gathers,
        gathered_params=gathered,
        reduced_params=counts.trainable,
        micro_batches=setup.gradient_accumulation_steps,
        bytes_per_step=on_the_wire,
        seconds_per_step=on_the_wire * 8 / (interconnect_gbps * 1e9),
        compute_seconds_per_step=compute_seconds_per_step,
    )
