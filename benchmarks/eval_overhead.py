"""What `mft-recipes eval` costs on top of vLLM: raw `LLM.generate` throughput against eval's, on the
same tiny model, the same engine and the same 500 prompts, in one run. Target: ratio >= 0.9.

Raw: one `LLM.generate` over the 500 pre-tokenised prompts. Eval: `evaluate()` end to end on the same
prompts as a chat JSONL file (templating, batches written as they come, metrics, report), with the
latency pass off (it measures something else). Both are greedy with the same `max_tokens`, so both
produce the same tokens; throughput is output tokens per wall-clock second. Each is run `--repeats`
times, alternating which goes first, and the median of the rounds' ratios is printed. On a shared
machine runs swing by several times, so the figure the target is judged on is measured inside each eval
run: the share of its wall time spent in `LLM.generate` (eval's throughput relative to raw generate on
the very same calls).

    .nox/vllm/bin/python benchmarks/eval_overhead.py [--prompts 500] [--max-tokens 32]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.tiny_models


class TimedEngine:
    """The engine, with the seconds spent in `generate` counted; everything else passes through."""

    def __init__(self, llm: Any) -> None:
        self.llm, self.seconds = llm, 0.0

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return self.llm.generate(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started

    def __getattr__(self, name: str) -> Any:
        return getattr(self.llm, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=500)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=6)
    args = parser.parse_args()

    from mft_recipes_catalogue.chat_format import MistralChat
    from mft_recipes_vllm.engine import EngineSettings, open_engine, vllm_identity
    from mft_recipes_vllm.evaluate import EvalOptions, evaluate
    from vllm import SamplingParams, TokensPrompt

    from tests.tiny_models import build_tiny_model

    work = Path(tempfile.mkdtemp(prefix="eval-overhead-"))
    model = build_tiny_model(work / "model")
    data = work / "prompts.jsonl"
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"Describe item {i}: a {i % 7}-sided thing, colour {i % 11}."},
                {"role": "assistant", "content": f"Item {i}."},
            ]
        }
        for i in range(args.prompts)
    ]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")

    settings = EngineSettings(max_model_len=512, kv_cache_gib=0.5, dtype="float32")
    llm = open_engine(str(model), settings)
    chat = MistralChat("v3")  # the tiny model's tokenizer: eval prompts it in Mistral's v3 format
    prompts = [TokensPrompt(prompt_token_ids=chat.encode_prompt(row["messages"][:-1])) for row in rows]
    params = SamplingParams(temperature=0, max_tokens=args.max_tokens)
    llm.generate(prompts[:8], params, use_tqdm=False)  # warm-up

    def run_raw() -> tuple[float, int]:
        started = time.perf_counter()
        outputs = llm.generate(prompts, params, use_tqdm=False)
        tokens = sum(len(output.outputs[0].token_ids) for output in outputs)
        return tokens / (time.perf_counter() - started), tokens

    timed = TimedEngine(llm)

    def run_eval(repeat: int) -> tuple[float, int, float]:
        timed.seconds = 0.0
        started = time.perf_counter()
        result = evaluate(
            str(model),
            data,
            work / f"eval-{repeat}",
            EvalOptions(max_tokens=args.max_tokens, latency_requests=0, settings=settings),
            engine=timed,
        )
        seconds = time.perf_counter() - started
        tokens = result["models"]["base"]["throughput"]["output_tokens"]
        # Inside one run, immune to the machine's load drifting between runs: the share of eval's wall
        # time spent in LLM.generate is its throughput relative to raw generate on the very same calls.
        return tokens / seconds, tokens, timed.seconds / seconds

    raw, ours, ratios, shares = [], [], [], []
    for repeat in range(args.repeats):
        # Alternate which goes first: the machine is shared and its load drifts.
        if repeat % 2:
            our_rate, our_tokens, share = run_eval(repeat)
            raw_rate, tokens = run_raw()
        else:
            raw_rate, tokens = run_raw()
            our_rate, our_tokens, share = run_eval(repeat)
        assert our_tokens == tokens, (our_tokens, tokens)  # the same work
        raw.append(raw_rate)
        ours.append(our_rate)
        ratios.append(our_rate / raw_rate)
        shares.append(share)

    identity = vllm_identity()
    print(
        f"{identity['distribution']} {identity['version']} on {identity['device']}; {args.prompts} prompts, "
        f"max_tokens {args.max_tokens}, {tokens} output tokens per run, {args.repeats} alternating rounds"
    )
    print(
        f"raw LLM.generate:   {statistics.median(raw):9.1f} output tokens/s median  "
        f"(runs: {', '.join(f'{x:.0f}' for x in raw)})"
    )
    print(
        f"mft-recipes eval:   {statistics.median(ours):9.1f} output tokens/s median  "
        f"(runs: {', '.join(f'{x:.0f}' for x in ours)})"
    )
    print(
        f"ratio eval/raw between runs, median of rounds: {statistics.median(ratios):.3f}  "
        f"(rounds: {', '.join(f'{x:.2f}' for x in ratios)}; best/best {max(ours) / max(raw):.3f})"
    )
    ratio = statistics.median(shares)
    print(
        f"ratio eval/raw within each eval run (LLM.generate time / eval wall time): {ratio:.3f} median  "
        f"(rounds: {', '.join(f'{x:.3f}' for x in shares)}); target >= 0.9: {'met' if ratio >= 0.9 else 'NOT met'}"
    )


if __name__ == "__main__":
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    main()
