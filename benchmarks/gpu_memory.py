"""Measure peak GPU memory and tokens/s of the built-in Mistral 7B LoRA and QLoRA recipes, and compare
them with `mft-recipes plan` in the same run.

For each recipe (mistral-7b-lora, mistral-7b-qlora) and two sequence lengths, the script renders the
recipe, builds a Mistral-7B-architecture model with random bf16 weights (no hub: the config comes from
the catalogue, the weights from torch.randn), loads it the way axolotl 0.19 does (bitsandbytes NF4 with
double quantization for QLoRA, then peft's prepare_model_for_kbit_training and the norms/embeddings cast
back to bf16), attaches the recipe's LoRA adapters with peft, and runs 5 training steps: bf16 autocast,
gradient checkpointing, the recipe's optimizer, micro batch × sequence_len random tokens (a packed batch).
It records torch.cuda.max_memory_allocated / max_memory_reserved and tokens/s, and prints them beside the
plan's figures as ratios:

    allocated vs plan − framework overhead      (what torch's allocator holds)
    reserved + CUDA context vs plan             (what the card must hold)
    measured tokens/s vs the plan's (peak × utilisation ÷ FLOPs per token), and the implied utilisation

Results go to benchmarks/results/gpu_memory-<device>-<date>.json with the device named.

Needs a CUDA GPU with ~40 GB free and: torch, transformers==5.16.1, peft==0.20.0, accelerate,
bitsandbytes==0.50.2 (the versions axolotl 0.19 brings). The attention is PyTorch SDPA (flash-attention's
package is not required; SDPA's flash kernel keeps the same tensors for backward).

    python benchmarks/gpu_memory.py                  # both recipes, sequence_len 2048 and 4096
    python benchmarks/gpu_memory.py --sequence-lens 1024 8192 --recipes mistral-7b-qlora
    python benchmarks/gpu_memory.py --tiny           # a 2-layer model on CPU: checks the script runs
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

import mft_recipes_axolotl  # noqa: E402
import mft_recipes_catalogue  # noqa: E402
from mft_recipes_plan.counts import count_parameters  # noqa: E402
from mft_recipes_plan.memory import CUDA_CONTEXT_GIB, GIB  # noqa: E402
from mft_recipes_plan.plan import PlanOptions, plan_rendered  # noqa: E402

from mft_recipes.host import build_registry  # noqa: E402
from mft_recipes.output import write_text_atomic  # noqa: E402
from mft_recipes.render import render_for_plan  # noqa: E402

STEPS = 5
WARMUP_STEPS = 1  # the first step allocates optimizer states and compiles kernels: not timed
TINY = {
    "hidden_size": 256,
    "intermediate_size": 512,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 64,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=["mistral-7b-lora", "mistral-7b-qlora"])
    parser.add_argument("--sequence-lens", nargs="+", type=int, default=[2048, 4096])
    parser.add_argument("--gpu", help="GPU name in the plan's table (default: guessed from the device name)")
    parser.add_argument("--tiny", action="store_true", help="2-layer model on CPU: a smoke run, no figures")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()

    import torch

    if not args.tiny and not torch.cuda.is_available():
        sys.exit("gpu_memory.py: no CUDA device; use --tiny for a smoke run on CPU")
    registry = build_registry([("catalogue", mft_recipes_catalogue), ("axolotl", mft_recipes_axolotl)])
    device = "cpu" if args.tiny else "cuda"
    device_name = "cpu (tiny smoke run)" if args.tiny else torch.cuda.get_device_name(0)
    gpu = args.gpu or guess_gpu(device_name)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = save_random_checkpoint(registry, Path(folder), args.tiny)
        for recipe_name in args.recipes:
            for sequence_len in args.sequence_lens:
                rows.append(measure(registry, recipe_name, sequence_len, checkpoint, device, gpu, args.tiny))
                print_row(rows[-1])
    if args.tiny:
        print("smoke run on CPU: no memory figures, nothing written")
        return
    result = {
        "device": device_name,
        "gpu_table_name": gpu,
        "date": datetime.date.today().isoformat(),
        "torch": torch.__version__,
        "versions": versions(),
        "steps": STEPS,
        "runs": rows,
    }
    slug = "".join(c if c.isalnum() else "-" for c in device_name.lower()).strip("-")
    path = args.out / f"gpu_memory-{slug}-{result['date']}.json"
    write_text_atomic(path, json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")


def guess_gpu(device_name: str) -> str:
    name = device_name.lower()
    for needle, table_name in (
        ("h200", "h200-141gb"),
        ("h100", "h100-80gb"),
        ("a100", "a100-80gb"),
        ("l40s", "l40s-48gb"),
        ("l4", "l4-24gb"),
        ("a10g", "a10g-24gb"),
        ("4090", "rtx4090-24gb"),
    ):
        if needle in name:
            return table_name
    return "h100-80gb"


def versions() -> dict[str, str]:
    from importlib import metadata

    found = {}
    for package in ("transformers", "peft", "bitsandbytes", "accelerate"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "absent"
    return found


def hf_config(registry: Any, tiny: bool) -> dict[str, Any]:
    config = registry.architectures["Mistral-7B-v0.3"].hf_config()
    if tiny:
        config.update(TINY)
    config["dtype"] = "bfloat16"
    return config


def save_random_checkpoint(registry: Any, folder: Path, tiny: bool) -> Path:
    """A Mistral-7B-architecture checkpoint with random bf16 weights, so both recipes load it the way
    axolotl loads a hub model (from_pretrained, with or without 4-bit quantization)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model(**hf_config(registry, tiny))
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model = model.to_empty(device="cuda" if torch.cuda.is_available() and not tiny else "cpu")
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.02)
    model.save_pretrained(folder)
    del model
    release()
    return folder


def release() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def load_for_recipe(document: dict[str, Any], checkpoint: Path, device: str) -> Any:
    """Load and wrap the model as axolotl 0.19 does for this document (see docs/plan.md)."""
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    kwargs: dict[str, Any] = {"dtype": torch.bfloat16, "attn_implementation": "sdpa"}
    if document.get("load_in_4bit"):
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
            bnb_4bit_use_double_quant=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_quant_storage=torch.bfloat16,
        )
    model = AutoModelForCausalLM.from_pretrained(checkpoint, device_map={"": device}, **kwargs)
    gc_kwargs = {"use_reentrant": True}  # axolotl's default
    if document.get("gradient_checkpointing"):
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=gc_kwargs)
    if document.get("load_in_4bit"):
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=True, gradient_checkpointing_kwargs=gc_kwargs
        )
        for name, module in model.named_modules():  # axolotl casts these back to the compute dtype
            if "norm" in name or any(part in name for part in ("embed_tokens", "lm_head")):
                module.to(torch.bfloat16)
    model.enable_input_require_grads()
    config = LoraConfig(
        r=document["lora_r"],
        lora_alpha=document["lora_alpha"],
        lora_dropout=document.get("lora_dropout", 0.0),
        target_modules=document["lora_target_modules"],
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def optimizer_for(name: str, parameters: list[Any], learning_rate: float) -> Any:
    import torch

    if "8bit" in name:
        import bitsandbytes as bnb

        factory = bnb.optim.PagedAdamW8bit if "paged" in name else bnb.optim.AdamW8bit
        return factory(parameters, lr=learning_rate)
    return torch.optim.AdamW(parameters, lr=learning_rate, fused=torch.cuda.is_available())


def measure(
    registry: Any, recipe_name: str, sequence_len: int, checkpoint: Path, device: str, gpu: str, tiny: bool
) -> dict[str, Any]:
    import torch

    rendered = render_for_plan(registry.recipes[recipe_name], {"sequence_len": sequence_len}, registry)
    document = rendered.document
    plan = plan_rendered(rendered, PlanOptions(gpu=gpu, gpus=1), registry.architecture_view)
    model = load_for_recipe(document, checkpoint, device)
    trainable, _ = model.get_nb_trainable_parameters()
    if not tiny:
        architecture = registry.architectures["Mistral-7B-v0.3"]
        expected = count_parameters(architecture, document).trainable
        assert trainable == expected, f"peft trains {trainable}, the plan counts {expected}"
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = optimizer_for(document["optimizer"], parameters, document["learning_rate"])
    micro_batch = document["micro_batch_size"]
    vocab = model.config.vocab_size
    model.train()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    elapsed, timed_tokens = 0.0, 0
    for step in range(STEPS):
        tokens = torch.randint(0, vocab, (micro_batch, sequence_len), device=device)
        started = time.perf_counter()
        with torch.autocast(device_type=device, dtype=torch.bfloat16):
            loss = model(input_ids=tokens, labels=tokens).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        if step >= WARMUP_STEPS:
            elapsed += time.perf_counter() - started
            timed_tokens += micro_batch * sequence_len
    row: dict[str, Any] = {
        "recipe": recipe_name,
        "sequence_len": sequence_len,
        "micro_batch_size": micro_batch,
        "trainable_params": trainable,
        "tokens_per_second": round(timed_tokens / elapsed, 1),
        "plan_memory_gib": round(plan.memory_per_gpu_gib or 0, 3),
        "plan_breakdown_gib": {k: round(v, 3) for k, v in plan.memory.gib().items()} if plan.memory else {},
    }
    assert plan.gpu is not None and plan.mfu is not None and plan.flops_per_token is not None
    plan_tokens_per_second = plan.gpu.bf16_tflops * 1e12 * plan.mfu / plan.flops_per_token
    row["plan_tokens_per_second"] = round(plan_tokens_per_second, 1)
    row["implied_mfu"] = round(
        row["tokens_per_second"] * plan.flops_per_token / (plan.gpu.bf16_tflops * 1e12), 4
    )
    if device == "cuda":
        allocated = torch.cuda.max_memory_allocated() / GIB
        reserved = torch.cuda.max_memory_reserved() / GIB
        overhead = row["plan_breakdown_gib"].get("framework overhead", 0.0)
        row.update(
            {
                "max_allocated_gib": round(allocated, 3),
                "max_reserved_gib": round(reserved, 3),
                "allocated_vs_plan_without_overhead": round(
                    allocated / (row["plan_memory_gib"] - overhead), 3
                ),
                "reserved_plus_context_vs_plan": round(
                    (reserved + CUDA_CONTEXT_GIB) / row["plan_memory_gib"], 3
                ),
            }
        )
    del model, optimizer, parameters
    release()
    return row


def print_row(row: dict[str, Any]) -> None:
    memory = ""
    if "max_allocated_gib" in row:
        memory = (
            f" allocated {row['max_allocated_gib']:.2f} GiB (×{row['allocated_vs_plan_without_overhead']} "
            f"of the plan without overhead), reserved {row['max_reserved_gib']:.2f} GiB "
            f"(+context ×{row['reserved_plus_context_vs_plan']} of the plan's {row['plan_memory_gib']:.2f})"
        )
    print(
        f"{row['recipe']} seq {row['sequence_len']} × {row['micro_batch_size']}:{memory} "
        f"{row['tokens_per_second']:.0f} tokens/s (plan {row['plan_tokens_per_second']:.0f}, "
        f"implied utilisation {row['implied_mfu']:.1%})",
        flush=True,
    )


if __name__ == "__main__":
    main()
