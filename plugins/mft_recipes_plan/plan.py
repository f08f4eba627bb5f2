"""A recipe's plan: parameters, memory per GPU, whether it fits, time and cost of training, serving cost.

`plan_rendered(rendered, options)` works on what `render` produced, so the plan describes exactly the
document that would be trained. Axolotl documents get the full plan; La Plateforme payloads get the
fees (Mistral's hardware is not ours to size).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

from mft_recipes import Architecture, Architectures, Hardware, RenderedDocument
from mft_recipes_plan.communication import Communication, zero3_communication
from mft_recipes_plan.counts import ParameterCount, active_parameters, count_parameters
from mft_recipes_plan.gpus import Gpu, find_gpu, load_gpu_table
from mft_recipes_plan.memory import GIB, MemoryEstimate, TrainingSetup, estimate_memory

# The document kinds a plan is made for.
PLANNED_KINDS = {"axolotl": "axolotl", "trl": "TRL", "la-plateforme-job": "La Plateforme job"}
# Model FLOPs utilisation assumed when the user gives none: the share of the BF16 peak a training step
# sustains. QLoRA loses time dequantizing; transformers' Mixtral experts run one expert at a time.
# Assumptions, printed with every plan and overridable with --mfu; benchmarks/gpu_memory.py measures it.
DEFAULT_MFU = {"full": 0.40, "lora": 0.40, "qlora": 0.30}
MOE_MFU_FACTOR = 0.5
# La Plateforme's documented fees: "Every fine-tuning job comes with a minimum fee of $4, and there's a
# monthly storage fee of $2 for each model" (docs.mistral.ai, capabilities/finetuning). It publishes no
# per-token training price.
PLATFORM_MINIMUM_USD = 4.0
PLATFORM_STORAGE_USD_PER_MONTH = 2.0
# Serving: hours an always-on server runs in a month, vLLM's default gpu_memory_utilization, room for
# the KV cache on top of the weights, and the share of the BF16 peak batched decoding sustains.
HOURS_PER_MONTH = 730
VLLM_MEMORY_UTILIZATION = 0.9
KV_CACHE_FACTOR = 1.3
SERVE_MFU = 0.25
# The most nodes `nodes_needed` looks at: beyond it a run wants a different setup (offload, more GPUs per
# node), not more of the same.
MAX_NODES = 64


class PlanError(ValueError):
    """A plan that cannot be made: an unknown GPU, a document the model does not cover."""


@dataclass(frozen=True)
class ServingQuestion:
    """Self-hosted vLLM against an API: the load and the prices to compare."""

    requests_per_month: int
    tokens_per_request: int
    api_usd_per_mtoken: float
    gpu: str | None = None
    tokens_per_second_per_gpu: float | None = None
    # The API's monthly fee for keeping the fine-tuned model (La Plateforme's documented $2 by default).
    api_storage_usd_per_month: float = PLATFORM_STORAGE_USD_PER_MONTH


@dataclass(frozen=True)
class CpuRun:
    """A CPU smoke-test run (`device=cpu`, the axolotl CPU profile): its processes share one machine's RAM."""

    processes: int
    ram_gib: float


@dataclass(frozen=True)
class PlanOptions:
    """What a plan is asked beyond the rendered recipe (the options of `plan`): the GPU, how many and on
    how many machines (default: the recipe's; `cluster_of` says how `gpus`, `nodes` and `gpus_per_node`
    combine), the network between machines (default: the GPU table's), the tokens of one pass over the
    data, the utilisation, a GPU table, La Plateforme's price, and the serving question."""

    gpu: str | None = None
    gpus: int | None = None
    nodes: int | None = None
    gpus_per_node: int | None = None
    interconnect_gbps: float | None = None
    tokens: int | None = None
    mfu: float | None = None
    gpu_table: str | None = None
    platform_usd_per_mtoken: float | None = None
    serving: ServingQuestion | None = None


@dataclass
class Plan:
    """Everything `plan` reports; `as_json` is the shape schemas/plan.schema.json documents."""

    recipe: str
    target: str
    model: str
    method: str
    architecture: Architecture | None
    gpu: Gpu | None
    gpus: int
    nodes: int = 1
    counts: ParameterCount | None = None
    memory: MemoryEstimate | None = None
    training_tokens: int | None = None
    flops_per_token: float | None = None
    mfu: float | None = None
    time_hours: float | None = None
    cost_usd: float | None = None
    platform: dict[str, Any] | None = None
    serving: dict[str, Any] | None = None
    cpu_run: CpuRun | None = None
    communication: Communication | None = None
    nodes_needed: int | None = None
    assumptions: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def memory_per_gpu_gib(self) -> float | None:
        return None if self.memory is None or self.gpu is None else self.memory.total / GIB

    @property
    def ram_needed_gib(self) -> float | None:
        """A CPU run: every process's memory and what DeepSpeed offloads, all in the machine's RAM."""
        if self.memory is None or self.cpu_run is None:
            return None
        return (self.memory.total * self.cpu_run.processes + self.memory.cpu_bytes) / GIB

    @property
    def headroom_gib(self) -> float | None:
        if self.cpu_run is not None and self.ram_needed_gib is not None:
            return self.cpu_run.ram_gib - self.ram_needed_gib
        if self.memory_per_gpu_gib is None or self.gpu is None:
            return None
        return self.gpu.memory_gib - self.memory_per_gpu_gib

    @property
    def fits(self) -> bool | None:
        headroom = self.headroom_gib
        return None if headroom is None else headroom >= 0

    def shortfall(self) -> str | None:
        """What does not fit, in one line (None when it fits or there is nothing to fit)."""
        short = -(self.headroom_gib or 0.0)
        if self.fits is not False:
            return None
        if self.cpu_run is not None:
            return (
                f"needs {self.ram_needed_gib:.1f} GiB of RAM, this machine has {self.cpu_run.ram_gib:.1f} GiB "
                f"({short:.1f} GiB short)"
            )
        assert self.gpu is not None
        enough = f"; {self.nodes_needed} nodes of {self.gpus_per_node} would fit" if self.nodes_needed else ""
        return (
            f"needs {self.memory_per_gpu_gib:.1f} GiB per GPU, {self.hardware()} has "
            f"{self.gpu.memory_gib:g} GiB ({short:.1f} GiB short){enough}"
        )

    @property
    def gpus_per_node(self) -> int:
        return self.gpus // self.nodes

    def hardware(self) -> str:
        """`8× h100-80gb`, or `2 nodes × 8× a100-40gb`."""
        gpu = self.gpu.name if self.gpu else "CPU"
        one_node = f"{self.gpus_per_node}× {gpu}"
        return one_node if self.nodes == 1 else f"{self.nodes} nodes × {one_node}"

    def as_json(self) -> dict[str, Any]:
        counts = self.counts
        return {
            "recipe": self.recipe,
            "target": self.target,
            "model": self.model,
            "method": self.method,
            "total_params": counts.total if counts else _total_of(self.architecture),
            "trainable_params": counts.trainable if counts else None,
            "params_breakdown": counts.groups if counts else None,
            "trainable_breakdown": counts.trainable_groups if counts else None,
            "gpu": self.gpu.as_json() if self.gpu else None,
            "gpus": self.gpus,
            "nodes": self.nodes,
            "gpus_per_node": self.gpus_per_node,
            "nodes_needed": self.nodes_needed,
            "memory_per_gpu_gib": _round(self.memory_per_gpu_gib),
            "memory_breakdown_gib": (
                {term: round(value, 3) for term, value in self.memory.gib().items()} if self.memory else None
            ),
            "cpu_offload_gib": _round(self.memory.cpu_bytes / GIB) if self.memory else None,
            "fits": self.fits,
            "headroom_gib": _round(self.headroom_gib),
            "training_tokens": self.training_tokens,
            "flops_per_token": self.flops_per_token,
            "mfu": self.mfu,
            "time_hours": _round(self.time_hours),
            "cost_usd": _round(self.cost_usd, 2),
            "communication": self.communication.as_json() if self.communication else None,
            "platform": self.platform,
            "serving": self.serving,
            "cpu_run": None
            if self.cpu_run is None
            else {
                "processes": self.cpu_run.processes,
                "ram_needed_gib": _round(self.ram_needed_gib),
                "ram_gib": _round(self.cpu_run.ram_gib),
            },
            "assumptions": self.assumptions,
            "notes": self.notes,
        }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _total_of(architecture: Architecture | None) -> int | None:
    if architecture is None:
        return None
    return count_parameters(architecture, {}).total


def plan_rendered(rendered: RenderedDocument, options: PlanOptions, architectures: Architectures) -> Plan:
    """The plan of a rendered document on the GPUs `options` name (default: the recipe's hardware); its
    architecture is the one its `base_model` names, else its recipe's."""
    recipe = rendered.recipe
    document = planned_document(rendered)
    architecture = _architecture_of(rendered, architectures)
    table = load_gpu_table(options.gpu_table)
    if rendered.target.kind not in PLANNED_KINDS:
        raise PlanError(
            f"target {rendered.target.name!r}: plan knows {' and '.join(PLANNED_KINDS.values())} "
            "documents only"
        )
    if rendered.target.kind == "la-plateforme-job":
        plan = Plan(recipe.name, rendered.target.name, recipe.model, recipe.method, architecture, None, 0)
        _plan_platform(plan, document, options)
    else:
        if architecture is None:
            raise PlanError(
                f"base_model {document.get('base_model')!r}: unknown architecture (not in the "
                "catalogue and no local config.json)"
            )
        on_cpu = rendered.parameters.get("device") == "cpu"
        if on_cpu and options.gpu:
            raise PlanError(f"device=cpu plans a run with no GPU: drop --gpu {options.gpu} (or device=cpu)")
        gpu = None if on_cpu else find_gpu(options.gpu or recipe.hardware.gpu, table)
        nodes, per_node = cluster_of(recipe.hardware, options)
        processes = nodes * per_node
        counts = count_parameters(architecture, document)
        setup = TrainingSetup.from_document(document)
        plan = Plan(
            recipe.name,
            rendered.target.name,
            recipe.model,
            counts.method,
            architecture,
            gpu,
            0 if on_cpu else processes,
            nodes=1 if on_cpu else nodes,
            counts=counts,
            memory=estimate_memory(architecture, counts, setup, processes, cuda=not on_cpu),
            cpu_run=CpuRun(processes, machine_ram_gib()) if on_cpu else None,
        )
        if gpu is not None:
            plan.nodes_needed = nodes_needed(architecture, counts, setup, gpu, per_node)
        plan.notes += list(counts.notes) + list(plan.memory.notes if plan.memory else ())
        plan.assumptions["micro batch"] = (
            f"{setup.micro_batch_size} × {setup.sequence_len} tokens"
            + (" (packed)" if setup.sample_packing else " (worst case: every sequence full)")
            + (", gradient checkpointing" if setup.gradient_checkpointing else ", no gradient checkpointing")
        )
        _plan_training_time(plan, architecture, counts, setup, options)
    if options.serving is not None:
        plan.serving = _plan_serving(plan, options.serving, table)
    return plan


def cluster_of(hardware: Hardware, options: PlanOptions) -> tuple[int, int]:
    """(nodes, GPUs per node) a plan is for: the recipe's hardware, changed by the options. `nodes` and
    `gpus_per_node` replace the recipe's; `gpus` alone means that many GPUs on one machine, as it always
    has (on a multi-node recipe: that many of its GPUs per node, on as many nodes as it takes); `gpus`
    with one of the others gives the other, and with both must be their product."""
    nodes, per_node, gpus = options.nodes, options.gpus_per_node, options.gpus
    if gpus is None:
        return nodes or hardware.nodes, per_node or max(hardware.gpus_per_node, 1)
    if nodes is None and per_node is None:
        if hardware.nodes == 1:
            return 1, gpus
        per_node = hardware.gpus_per_node
    if nodes is None:
        assert per_node is not None
        nodes = gpus // per_node
    per_node = per_node or gpus // nodes
    if nodes < 1 or per_node < 1 or nodes * per_node != gpus:
        raise PlanError(
            f"--gpus {gpus} is not {nodes} nodes × {per_node} GPUs per node: give the GPUs in all as a "
            "multiple of the GPUs per node (--gpus-per-node; the recipe's by default), or --nodes and "
            "--gpus-per-node"
        )
    return nodes, per_node


def nodes_needed(
    architecture: Architecture, counts: ParameterCount, setup: TrainingSetup, gpu: Gpu, per_node: int
) -> int | None:
    """The fewest machines of `per_node` GPUs on which a step fits in memory (the sharded terms shrink
    with the world size), or None when even MAX_NODES do not do it."""
    for nodes in range(1, MAX_NODES + 1):
        memory = estimate_memory(architecture, counts, setup, nodes * per_node)
        if memory.total / GIB <= gpu.memory_gib:
            return nodes
    return None


def machine_ram_gib() -> float:
    """The memory this machine gives this process: the physical RAM (the kernel's page count × page size),
    or less where a cgroup v2 limit says so (a CI container)."""
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as limit:
            ram = min(ram, int(limit.read()))
    except (OSError, ValueError):  # no cgroup v2, or "max"
        pass
    return ram / GIB


def planned_document(rendered: RenderedDocument) -> dict[str, Any]:
    """The rendered document in the keys the plan reads: axolotl's (a TRL config is renamed)."""
    if rendered.target.kind == "trl":
        from mft_recipes_plan.trl_config import as_axolotl

        return as_axolotl(rendered.document, rendered.companions.get("accelerate"))
    return rendered.document


def _architecture_of(rendered: RenderedDocument, architectures: Architectures) -> Architecture | None:
    base_model = planned_document(rendered).get("base_model")
    if isinstance(base_model, str):
        found = architectures.find(base_model)
        if found is not None:
            return found
    return architectures.get(rendered.recipe.model)


def flops_per_token(architecture: Architecture, counts: ParameterCount, setup: TrainingSetup) -> float:
    """Training FLOPs per token: 2 per active weight per pass, with the passes a step makes.

    Forward is one pass; backward is two for trained weights (input and weight gradients) and one for
    frozen ones (input gradients only); gradient checkpointing adds a forward. Attention scores add
    2·2·q_dim·(sequence/2) per layer and pass (causal: half the sequence on average), three passes plus
    the recompute.
    """
    recompute = 1 if setup.gradient_checkpointing else 0
    weight_passes = (3 if counts.method == "full" else 2) + recompute
    attention = (
        2
        * architecture.num_hidden_layers
        * architecture.num_attention_heads
        * (architecture.attention_head_dim)
        * setup.sequence_len
    )
    adapters = 2 * (3 + recompute) * counts.adapter_params if counts.method != "full" else 0
    return float(2 * active_parameters(architecture) * weight_passes + attention * (3 + recompute) + adapters)


def _plan_training_time(
    plan: Plan, architecture: Architecture, counts: ParameterCount, setup: TrainingSetup, options: PlanOptions
) -> None:
    if plan.gpu is None:
        plan.notes.append(
            "a CPU run: no time or cost is planned (the model is a GPU's BF16 peak); a smoke test trains a "
            "tiny model for a few steps"
        )
        return
    mfu = options.mfu
    if mfu is None:
        mfu = DEFAULT_MFU.get(counts.method, 0.35) * (MOE_MFU_FACTOR if architecture.is_moe else 1.0)
    if not 0 < mfu <= 1:
        raise PlanError(f"--mfu: expected a fraction in (0, 1], got {mfu}")
    plan.mfu = round(mfu, 4)
    plan.flops_per_token = flops_per_token(architecture, counts, setup)
    plan.assumptions["utilisation"] = (
        f"{mfu:.0%} of the BF16 peak ({'given' if options.mfu is not None else 'assumed'}; --mfu to change)"
    )
    _plan_communication(plan, counts, setup, options)
    if options.tokens is None:
        plan.notes.append("no --tokens or --data: time and cost need the size of the data")
        return
    plan.training_tokens = round(options.tokens * (1 - setup.val_set_size) * setup.num_epochs)
    plan.assumptions["tokens"] = (
        f"{options.tokens:,} in the data × (1 − val_set_size {setup.val_set_size}) × {setup.num_epochs:g} epochs"
    )
    assert plan.gpu is not None
    seconds = plan.training_tokens * plan.flops_per_token / (plan.gpus * plan.gpu.bf16_tflops * 1e12 * mfu)
    if plan.communication is not None:
        seconds *= plan.communication.slowdown
    plan.time_hours = seconds / 3600
    plan.cost_usd = plan.time_hours * plan.gpus * plan.gpu.usd_per_hour
    plan.assumptions["price"] = f"${plan.gpu.usd_per_hour}/GPU-hour ({plan.gpu.price_source or 'your table'})"


def _plan_communication(
    plan: Plan, counts: ParameterCount, setup: TrainingSetup, options: PlanOptions
) -> None:
    """ZeRO-3's traffic between the plan's machines, against its compute (plugins/mft_recipes_plan/
    communication.py, docs/plan.md)."""
    if plan.nodes < 2:
        return
    if not setup.sharded or setup.fsdp:
        plan.notes.append(
            f"{plan.nodes} nodes: traffic between machines is modelled for DeepSpeed ZeRO-3 only; this run's is not counted"
        )
        return
    assert plan.gpu is not None and plan.mfu is not None and plan.flops_per_token is not None
    gbps = options.interconnect_gbps or plan.gpu.interconnect_gbps
    if gbps is None:
        plan.notes.append(
            f"{plan.gpu.name}: the GPU table gives no network between machines; time leaves ZeRO-3's "
            "traffic between nodes out (--interconnect-gbps N counts it)"
        )
        return
    source = "given" if options.interconnect_gbps else plan.gpu.interconnect_source or "your table"
    tokens_per_step = setup.tokens_per_micro_batch * setup.gradient_accumulation_steps
    compute = tokens_per_step * plan.flops_per_token / (plan.gpu.bf16_tflops * 1e12 * plan.mfu)
    plan.communication = communication = zero3_communication(
        counts,
        setup,
        nodes=plan.nodes,
        world_size=plan.gpus,
        interconnect_gbps=gbps,
        interconnect_source=source,
        compute_seconds_per_step=compute,
    )
    plan.assumptions["network"] = (
        f"{gbps:g} Gb/s per GPU between machines ({source}; --interconnect-gbps to change), at full rate, "
        "overlapped with compute"
    )
    if communication.bound == "communication":
        plan.notes.append(
            f"communication-bound: each step moves {communication.bytes_per_step / 1e9:.1f} GB per GPU between "
            f"nodes ({communication.seconds_per_step:.2f} s at {gbps:g} Gb/s) against "
            f"{communication.compute_seconds_per_step:.2f} s of compute; more tokens per step "
            "(gradient_accumulation_steps does not help: ZeRO-3 gathers per micro batch; micro_batch_size or "
            "sequence_len does), fewer nodes or a faster network"
        )


def _plan_platform(plan: Plan, document: dict[str, Any], options: PlanOptions) -> None:
    hyperparameters = document.get("hyperparameters") or {}
    epochs = hyperparameters.get("epochs")
    per_token = options.platform_usd_per_mtoken
    fees: dict[str, Any] = {
        "minimum_usd_per_job": PLATFORM_MINIMUM_USD,
        "storage_usd_per_month": PLATFORM_STORAGE_USD_PER_MONTH,
        "usd_per_mtoken": per_token,
        "training_steps": hyperparameters.get("training_steps"),
        "epochs": epochs,
    }
    plan.assumptions["hardware"] = "La Plateforme trains on Mistral's hardware: no memory plan"
    if options.tokens is not None:
        plan.training_tokens = round(options.tokens * (epochs or 1))
        if not epochs:
            plan.notes.append("training_steps set: Mistral decides the tokens per step; counted as one pass")
    if per_token is None:
        plan.notes.append(
            "Mistral publishes no per-token fine-tuning price: give --platform-price-per-mtoken "
            "(the job's metadata.cost shows it after validation)"
        )
        plan.cost_usd = PLATFORM_MINIMUM_USD
    elif plan.training_tokens is not None:
        plan.cost_usd = max(PLATFORM_MINIMUM_USD, plan.training_tokens / 1e6 * per_token)
    fees["job_usd"] = plan.cost_usd
    plan.platform = fees


def _plan_serving(plan: Plan, question: ServingQuestion, table: dict[str, Gpu]) -> dict[str, Any]:
    if plan.architecture is None:
        raise PlanError(
            f"serving cost needs the model's architecture; {plan.model!r} is not in the catalogue"
        )
    gpu = find_gpu(question.gpu, table) if question.gpu else plan.gpu
    if gpu is None:
        raise PlanError("serving cost: give --serve-gpu NAME (this plan has no GPU to serve on)")
    total = count_parameters(plan.architecture, {}).total
    weights_gib = total * 2 / GIB
    gpus_per_replica = math.ceil(weights_gib * KV_CACHE_FACTOR / (gpu.memory_gib * VLLM_MEMORY_UTILIZATION))
    throughput = question.tokens_per_second_per_gpu
    derived = throughput is None
    if throughput is None:
        throughput = gpu.bf16_tflops * 1e12 * SERVE_MFU / (2 * active_parameters(plan.architecture))
    tokens_per_month = question.requests_per_month * question.tokens_per_request
    needed_per_second = tokens_per_month / (HOURS_PER_MONTH * 3600)
    replicas = max(1, math.ceil(needed_per_second / (throughput * gpus_per_replica)))
    gpus = replicas * gpus_per_replica
    self_hosted = gpus * gpu.usd_per_hour * HOURS_PER_MONTH
    api = tokens_per_month / 1e6 * question.api_usd_per_mtoken + question.api_storage_usd_per_month
    replica_usd = gpus_per_replica * gpu.usd_per_hour * HOURS_PER_MONTH
    replica_requests = throughput * gpus_per_replica * HOURS_PER_MONTH * 3600 / question.tokens_per_request
    break_even = _break_even(question, replica_usd, replica_requests)
    return {
        "gpu": gpu.name,
        "gpus": gpus,
        "requests_per_month": question.requests_per_month,
        "tokens_per_request": question.tokens_per_request,
        "tokens_per_second_per_gpu": round(throughput, 1),
        "self_hosted_usd_per_month": round(self_hosted, 2),
        "api_usd_per_month": round(api, 2),
        "self_hosted_vs_api": round(self_hosted / api - 1, 4) if api else None,
        "break_even_requests_per_month": break_even,
        "replica_requests_per_month": math.floor(replica_requests),
        "assumptions": [
            f"vLLM on {gpus}× {gpu.name}, always on, {HOURS_PER_MONTH} h/month at ${gpu.usd_per_hour}/GPU-hour",
            f"{gpus_per_replica} GPU(s) per replica: 16-bit weights {weights_gib:.1f} GiB × {KV_CACHE_FACTOR} for "
            f"the KV cache within {VLLM_MEMORY_UTILIZATION:.0%} of {gpu.memory_gib} GiB",
            (
                f"{throughput:,.0f} tokens/s per GPU, "
                + (
                    f"derived: {SERVE_MFU:.0%} of the BF16 peak ÷ 2 FLOPs per active parameter "
                    "(--serve-tokens-per-second to use a measured figure)"
                    if derived
                    else "given"
                )
            ),
            f"load spread evenly over the month ({needed_per_second:,.1f} tokens/s on average; peaks need more)",
            f"API at ${question.api_usd_per_mtoken}/M tokens, input and output alike, plus "
            f"${question.api_storage_usd_per_month:g}/month to keep the fine-tuned model",
            (
                f"break-even: {break_even:,} requests/month (one replica, ${replica_usd:,.2f}/month, "
                f"costs what the API charges for them; it serves up to {replica_requests:,.0f})"
                if break_even is not None
                else f"no break-even: one replica (${replica_usd:,.2f}/month) full to its "
                f"{replica_requests:,.0f} requests/month still costs more than the API for them"
            ),
        ],
    }


def _break_even(question: ServingQuestion, replica_usd: float, replica_requests: float) -> int | None:
    """The least monthly load at which self-hosting costs no more than the API: the API's bill for it
    (per token, plus its storage fee) reaches what one always-on replica costs. None when one replica
    cannot serve that load: each further replica costs as much again for no more than it serves, so
    self-hosting never catches up with the API."""
    usd_per_request = question.tokens_per_request / 1e6 * question.api_usd_per_mtoken
    if usd_per_request == 0:
        return None
    requests = max(0.0, replica_usd - question.api_storage_usd_per_month) / usd_per_request
    return math.ceil(requests) if requests <= replica_requests else None
