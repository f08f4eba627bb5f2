"""GPU memory of a training step, per GPU, term by term (docs/plan.md explains each term and constant).

Pure arithmetic over the architecture, the exact parameter counts and what the axolotl document says
(precision, quantization, LoRA, optimizer, sequence length × micro batch, gradient checkpointing,
DeepSpeed ZeRO stage and offload). Every constant below names where it comes from; none is fitted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mft_recipes import Architecture
from mft_recipes_plan.counts import BaseTensor, ParameterCount, base_tensors

GIB = 2**30

# bitsandbytes NF4 (quantize_4bit, blocksize 64) with double quantization (axolotl sets
# bnb_4bit_use_double_quant: True; its quantize_moe_experts does too): 4 bits per weight, one 8-bit
# absmax per 64 weights, and one fp32 absmax per 256 of those blocks.
NF4_BYTES = 0.5 + 1 / 64 + 4 / (64 * 256)
# bitsandbytes LLM.int8 (load_in_8bit): 1 byte per weight plus one fp32 scale per output row (SCB).
INT8_BYTES = 1.0
# bitsandbytes 8-bit optimizers: one byte per state element plus an fp32 absmax per block of 256.
OPTIMIZER_8BIT_BYTES = 1 + 4 / 256
# Adam-family optimizers keep two states per parameter (exp_avg, exp_avg_sq); Lion one; SGD none.
OPTIMIZER_STATES = {"adam": 2, "lion": 1, "sgd": 0}
# DeepSpeed's own estimate per trained parameter (estimate_zero3_model_states_mem_needs: 18 bytes):
# a 16-bit parameter (2) + fp32 gradient partition (4) + fp32 master weights, exp_avg, exp_avg_sq (12).
DS_PARAM_BYTES, DS_GRAD_BYTES, DS_MASTER_BYTES = 2, 4, 4
# The loss: lm_head's 16-bit logits (kept in the model output for the step), their fp32 copy in
# transformers' ForCausalLMLoss, log_softmax's fp32 output saved for backward, and its fp32 gradient.
LOGITS_BYTES_PEAK = 2 + 4 + 4 + 4
LOGITS_BYTES_KEPT = 2
# Not in torch's allocator but on the card: CUDA context, cuBLAS/cuDNN workspaces, kernels (measured
# 0.5-1 GiB on recent drivers); NCCL buffers with several GPUs; and the caching allocator's slack
# (reserved minus allocated), taken as a share of what is allocated. Assumptions, checked by
# benchmarks/gpu_memory.py.
CUDA_CONTEXT_GIB = 0.75
NCCL_GIB = 0.5
ALLOCATOR_SLACK = 0.10


class SetupError(ValueError):
    """A document whose memory cannot be planned (a setting the model does not cover)."""


@dataclass(frozen=True)
class TrainingSetup:
    """What an axolotl document says that matters for memory and time, read once."""

    method: str
    compute_bytes: int
    load_in_4bit: bool
    load_in_8bit: bool
    quantize_moe_experts: bool
    sequence_len: int
    micro_batch_size: int
    gradient_accumulation_steps: int
    sample_packing: bool
    gradient_checkpointing: bool
    flash_attention: bool
    optimizer: str
    lora_dropout: float
    num_epochs: float
    val_set_size: float
    zero_stage: int
    offload_optimizer: bool
    offload_param: bool
    fsdp: bool
    notes: tuple[str, ...] = ()

    @property
    def tokens_per_micro_batch(self) -> int:
        return self.sequence_len * self.micro_batch_size

    @property
    def sharded(self) -> bool:
        """Parameters themselves are split across GPUs (ZeRO-3 or FSDP full shard)."""
        return self.zero_stage == 3 or self.fsdp

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> TrainingSetup:
        notes = []
        precision = (
            "bf16" if document.get("bf16") in (True, "auto") else "fp16" if document.get("fp16") else None
        )
        if precision is None:
            notes.append("neither bf16 nor fp16: planned in fp32")
        deepspeed = document.get("deepspeed")
        zero: dict[str, Any] = {}
        if isinstance(deepspeed, dict):
            zero = deepspeed.get("zero_optimization") or {}
        elif isinstance(deepspeed, str):
            notes.append(
                f"deepspeed: {deepspeed!r} is a file; planned as ZeRO stage 3 (inline it to be exact)"
            )
            zero = {"stage": 3}
        stage = zero.get("stage", 0)
        if not isinstance(stage, int) or stage not in (0, 1, 2, 3):
            raise SetupError(f"deepspeed.zero_optimization.stage: expected 0-3, got {stage!r}")
        fsdp = bool(document.get("fsdp") or document.get("fsdp_config"))
        if fsdp:
            notes.append("FSDP planned as a full shard (like ZeRO-3)")
        sequence_len = document.get("sequence_len", 2048)
        micro_batch = document.get("micro_batch_size", 1)
        accumulation = document.get("gradient_accumulation_steps", 1)
        for key, value in (
            ("sequence_len", sequence_len),
            ("micro_batch_size", micro_batch),
            ("gradient_accumulation_steps", accumulation),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise SetupError(f"{key}: expected a positive integer, got {value!r}")
        return cls(
            method=str(document.get("adapter") or "full"),
            compute_bytes=4 if precision is None else 2,
            load_in_4bit=bool(document.get("load_in_4bit")),
            load_in_8bit=bool(document.get("load_in_8bit")),
            quantize_moe_experts=bool(document.get("quantize_moe_experts")),
            sequence_len=sequence_len,
            micro_batch_size=micro_batch,
            gradient_accumulation_steps=accumulation,
            sample_packing=bool(document.get("sample_packing")),
            gradient_checkpointing=bool(document.get("gradient_checkpointing")),
            flash_attention=_memory_efficient_attention(document),
            optimizer=str(document.get("optimizer") or "adamw_torch_fused"),
            lora_dropout=float(document.get("lora_dropout") or 0.0),
            num_epochs=float(document.get("num_epochs") or 1),
            val_set_size=float(document.get("val_set_size") or 0.0),
            zero_stage=stage,
            offload_optimizer=_offloaded(zero.get("offload_optimizer")),
            offload_param=_offloaded(zero.get("offload_param")),
            fsdp=fsdp,
            notes=tuple(notes),
        )


def _offloaded(section: Any) -> bool:
    return isinstance(section, dict) and section.get("device") in ("cpu", "nvme")


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes per GPU by term (the keys are what `plan` prints), and bytes moved to the CPU by offload."""

    terms: dict[str, float]
    cpu_bytes: float = 0.0
    notes: tuple[str, ...] = field(default=())

    @property
    def total(self) -> float:
        return sum(self.terms.values())

    def gib(self) -> dict[str, float]:
        return {term: value / GIB for term, value in self.terms.items()}


def estimate_memory(
    architecture: Architecture, count: ParameterCount, setup: TrainingSetup, gpus: int, *, cuda: bool = True
) -> MemoryEstimate:
    """Peak memory of one GPU during a training step of `setup` on `gpus` GPUs; with `cuda=False`, of one
    of `gpus` processes of a CPU run (no CUDA context, no NCCL buffers)."""
    if gpus < 1:
        raise SetupError(f"gpus: expected at least 1, got {gpus}")
    notes = list(setup.notes)
    terms: dict[str, float] = {}
    cpu = 0.0
    trained = {tensor.name for tensor in count.trained_base}
    weight_share = 0.0 if setup.offload_param else 1 / gpus if setup.sharded else 1.0
    for tensor in base_tensors(architecture):
        if tensor.name in trained:
            continue
        label, per_param = _frozen_storage(tensor, setup, architecture)
        terms[label] = terms.get(label, 0.0) + tensor.numel * per_param * weight_share
        if setup.offload_param:
            cpu += tensor.numel * per_param

    trainable = count.trainable
    if setup.zero_stage or setup.fsdp:
        param_bytes, grad_bytes, master_bytes = DS_PARAM_BYTES, DS_GRAD_BYTES, DS_MASTER_BYTES
        if setup.method == "full":
            notes.append(
                "DeepSpeed keeps fp32 master weights, gradients and optimizer states (18 bytes/param)"
            )
    else:
        # Adapters are created in fp32 (peft autocast_adapter_dtype); a full fine-tune trains the weights
        # in the dtype axolotl loaded them in.
        param_bytes = 4 if setup.method != "full" else setup.compute_bytes
        grad_bytes, master_bytes = param_bytes, 0
    # The optimizer's states take the dtype of the weights it updates: DeepSpeed's fp32 master copies.
    states, state_bytes = _optimizer_states(setup.optimizer, master_bytes or param_bytes, notes)
    grad_share = 1 / gpus if setup.zero_stage >= 2 or setup.fsdp else 1.0
    optimizer_share = 1 / gpus if setup.zero_stage >= 1 or setup.fsdp else 1.0
    optimizer_bytes = trainable * (states * state_bytes + master_bytes)
    terms["trainable weights"] = trainable * param_bytes * weight_share
    if setup.offload_param:
        cpu += trainable * param_bytes
    if setup.offload_optimizer:
        terms["gradients"] = 0.0
        terms["optimizer states"] = 0.0
        cpu += trainable * grad_bytes + optimizer_bytes
    else:
        terms["gradients"] = trainable * grad_bytes * grad_share
        terms["optimizer states"] = optimizer_bytes * optimizer_share
    if "paged" in setup.optimizer:
        notes.append(
            "paged optimizer: its states can spill to CPU memory under pressure (counted on the GPU)"
        )

    tokens = setup.tokens_per_micro_batch
    layer = activation_bytes_per_token_layer(architecture, count, setup) * tokens
    checkpoints = architecture.num_hidden_layers * 2 * architecture.hidden_size * tokens
    logits_peak = LOGITS_BYTES_PEAK * architecture.vocab_size * tokens
    logits_kept = LOGITS_BYTES_KEPT * architecture.vocab_size * tokens
    if setup.gradient_checkpointing:
        # Saved: each decoder layer's input. Then, in backward, one layer is recomputed; the loss's
        # buffers are gone by then except the 16-bit logits the model output keeps.
        terms["activations"] = checkpoints + layer
        terms["logits"] = max(logits_peak - layer, logits_kept)
    else:
        terms["activations"] = layer * architecture.num_hidden_layers
        terms["logits"] = logits_peak
    materialized = materialized_expert_bytes(architecture, count, setup)
    if materialized:
        live_layers = 1 if setup.gradient_checkpointing else architecture.num_hidden_layers
        terms["expert weights materialized"] = materialized * live_layers
    if setup.sharded and not setup.fsdp:
        terms["ZeRO-3 gathered layer"] = _largest_gathered_bytes(architecture, count, setup)

    allocated = sum(terms.values())
    cuda_buffers = CUDA_CONTEXT_GIB * GIB + (NCCL_GIB * GIB if gpus > 1 else 0.0) if cuda else 0.0
    terms["framework overhead"] = cuda_buffers + ALLOCATOR_SLACK * allocated
    return MemoryEstimate(terms, cpu_bytes=cpu, notes=tuple(dict.fromkeys(notes)))


def _frozen_storage(
    tensor: BaseTensor, setup: TrainingSetup, architecture: Architecture
) -> tuple[str, float]:
    """How a frozen base tensor is stored on the GPU: (breakdown label, bytes per parameter).

    Mirrors axolotl 0.19's loader: bitsandbytes quantizes nn.Linear layers except lm_head; the fused
    experts only with quantize_moe_experts; peft's prepare_model_for_kbit_training (run for 4/8-bit
    LoRA unless ZeRO-3/FSDP or quantized experts) casts every other 16-bit parameter to fp32, after which
    axolotl casts norms and embeddings back to 16-bit. The router (`.gate`) is cast to fp32 on load.
    """
    dtype = setup.compute_bytes
    label16 = "weights 16-bit" if dtype == 2 else "weights fp32"
    quantized = setup.load_in_4bit or setup.load_in_8bit
    if quantized and setup.method != "full":
        quant_label, quant_bytes = (
            ("weights nf4", NF4_BYTES) if setup.load_in_4bit else ("weights int8", INT8_BYTES)
        )
        if tensor.kind == "linear":
            if not setup.load_in_4bit:
                return quant_label, quant_bytes + 4 / tensor.shape[-1]  # fp32 scale per output row
            return quant_label, quant_bytes
        experts_quantized = architecture.is_moe and setup.quantize_moe_experts
        if tensor.kind == "experts" and experts_quantized:
            return quant_label, quant_bytes
        prepared = not (setup.sharded or experts_quantized)
        if tensor.kind in ("experts",) and prepared:
            return "weights fp32", 4.0
    if tensor.kind == "router" and not setup.sharded and not setup.zero_stage:
        return "weights fp32", 4.0
    return label16, float(dtype)


def _optimizer_states(optimizer: str, weight_bytes: int, notes: list[str]) -> tuple[int, float]:
    """(states per parameter, bytes per state element) of an axolotl `optimizer` name."""
    name = optimizer.lower()
    family = "lion" if "lion" in name else "sgd" if "sgd" in name else "adam"
    if family == "adam" and "adam" not in name:
        notes.append(f"optimizer {optimizer!r} is not modelled: planned as AdamW")
    state_bytes = OPTIMIZER_8BIT_BYTES if "8bit" in name else float(weight_bytes)
    return OPTIMIZER_STATES[family], state_bytes


def activation_bytes_per_token_layer(
    architecture: Architecture, count: ParameterCount, setup: TrainingSetup
) -> float:
    """Bytes one decoder layer saves for backward, per token (16-bit activations).

    What autograd keeps, op by op (a matmul keeps its input only when its weight trains):
    each RMSNorm keeps its fp32 input (4h); flash-attention keeps q, k, v after RoPE and its output
    (2 bytes each); the dense MLP keeps gate and up outputs and SiLU(gate) (3 × 2I). Training the weights
    (a full fine-tune) also keeps, per norm, its normalized input for the norm weight's gradient and its
    output for the projections' (2 × (2h + 2h)), and the MLP product (2I). MoE: per token and each of its k experts, the gate_up output (4I) and SiLU (2I)
    and the expert output (2h); when the experts train (full, or LoRA on them) also the gathered input
    (2h) and the product (2I). LoRA on a Linear: peft casts the input to the adapter's fp32 and autocast
    back to 16-bit, a new tensor lora_A keeps (2 bytes per input feature), the rank-r middle (2r), and
    with dropout > 0 its mask (1 byte per input feature). Without flash attention the attention
    probabilities (heads × sequence, 2 bytes) are kept too. The axolotl tier checks this against what
    autograd really saves (tests/plan/test_activations_against_autograd.py).
    """
    h, i = architecture.hidden_size, architecture.intermediate_size
    q = architecture.num_attention_heads * architecture.attention_head_dim
    kv = architecture.num_key_value_heads * architecture.attention_head_dim
    full = setup.method == "full"
    per_token = 2 * 4 * h + 2 * (q + 2 * kv) + 2 * q + (2 * 4 * h if full else 0)
    if not setup.flash_attention:
        per_token += 2 * architecture.num_attention_heads * setup.sequence_len
    if architecture.is_moe:
        experts_train = full or any(a.base.kind == "experts" for a in count.adapters)
        per_token += architecture.num_experts_per_tok * (
            2 * h + 6 * i + ((2 * h + 2 * i) if experts_train else 0)
        )
    else:
        per_token += 6 * i + (2 * i if full else 0)
    layer_zero = [a for a in count.adapters if a.how == "lora" and ".layers.0." in f".{a.base.module}."]
    for adapter in layer_zero:
        in_features = adapter.base.shape[-1]
        per_token += 2 * in_features + 2 * adapter.rank + (in_features if setup.lora_dropout > 0 else 0)
    return float(per_token)


def materialized_expert_bytes(
    architecture: Architecture, count: ParameterCount, setup: TrainingSetup
) -> float:
    """16-bit copies of one layer's fused experts that exist while the layer runs.

    peft's ParamWrapper (LoRA on gate_up_proj/down_proj) builds W + ΔW for the whole parameter on each
    forward; axolotl's quantize_moe_experts parametrization dequantizes the experts on access.
    """
    if not architecture.is_moe:
        return 0.0
    experts = [t for t in base_tensors(architecture) if t.kind == "experts" and ".layers.0." in t.name + "."]
    one_layer = sum(t.numel for t in experts) * 2
    copies = 0
    if any(a.how == "lora-parameter" and a.base.kind == "experts" for a in count.adapters):
        copies += 1
    if setup.quantize_moe_experts and (setup.load_in_4bit or setup.load_in_8bit):
        copies += 1
    return float(one_layer * copies)


def _largest_gathered_bytes(architecture: Architecture, count: ParameterCount, setup: TrainingSetup) -> float:
    """ZeRO-3 gathers a module's full parameters while it runs; axolotl makes the MoE block one leaf
    (set_z3_leaf_modules), so on Mixtral that is all experts of a layer. DeepSpeed's own estimator counts
    4 bytes per parameter of the largest layer (16-bit parameters and gradients)."""
    tensors = [t for t in base_tensors(architecture) if ".layers.0." in t.name]
    largest = max(
        sum(t.numel for t in tensors if t.kind == "experts"),
        max((t.numel for t in tensors if t.kind != "experts"), default=0),
    )
    largest = max(largest, architecture.vocab_size * architecture.hidden_size)
    return float(largest * (4 if setup.method == "full" else 2))


# attn_implementation values whose kernels never hold the (heads × sequence × sequence) probabilities;
# `flash_attention` and `sdp_attention` are axolotl's older, deprecated spellings of the same choice.
MEMORY_EFFICIENT_ATTENTION = ("flash_attention_2", "flash_attention_3", "sdpa", "flex_attention")


def _memory_efficient_attention(document: dict[str, Any]) -> bool:
    return bool(
        document.get("attn_implementation") in MEMORY_EFFICIENT_ATTENTION
        or document.get("flash_attention")
        or document.get("sdp_attention")
    )
