"""What ranking 340 labels costs `mft-recipes eval --task classification`: the exact label-trie search
(mft_recipes_vllm.ranking, through eval's own Runner) against scoring every label on its own (one vLLM
request of the prompt and the label, read with prompt_logprobs: what eval did before), in one run, on
the same engine, the same prompts and the same 340 three-level category paths (tests/products.py).

For each model, per example: ranking seconds and tokens the model computed (exhaustive: every prompt and
label, which vLLM computes whole; the trie: what the prefix cache did not hold), and their ratios. Two
models, because the search's cost depends on how sure the model is: a tiny Mistral as built, untrained
(flat: the search expands most of the trie), and the same model trained for a minute on products of
the taxonomy (it has learned the labels, as a fine-tuned classifier has: the search stops after a few
dozen nodes). Every top 3 is checked equal to exhaustive scoring's (the vLLM tier proves the whole
ranking, tests/vllm_plugin/test_vllm_ranking.py). The two methods alternate over `--repeats` rounds;
the medians are printed.

    .nox/vllm/bin/python benchmarks/classification_ranking.py [--examples 24] [--train-steps 300]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.tiny_models, tests.products

SYSTEM = "Answer with the product's category path."


def chats(rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    from mft_recipes import CategoryPath

    return [
        {
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": f"{row['name']}\n{row['description']}"},
                {"role": "assistant", "content": CategoryPath.join(CategoryPath.split(row["category"]))},
            ]
        }
        for row in rows
    ]


def train(base: Path, out: Path, examples: list[dict[str, Any]], steps: int) -> Path:
    """The tiny model fine-tuned (all weights, AdamW) on the answers of `examples`, as Mistral's v3 format
    encodes them: what a classifier's fine-tuning does, in a minute on a CPU."""
    import torch
    from mft_recipes_catalogue.chat_format import MistralChat
    from transformers import AutoModelForCausalLM

    chat = MistralChat("v3")
    encoded = []
    for example in examples:
        prompt = chat.encode_prompt(example["messages"][:-1])
        tokens = chat.encode(example).tokens
        encoded.append((tokens, [-100] * len(prompt) + tokens[len(prompt) :]))
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    rng = random.Random(0)
    model.train()
    for step in range(steps):
        batch = rng.sample(encoded, 32)
        width = max(len(tokens) for tokens, _ in batch)
        ids = torch.tensor([tokens + [0] * (width - len(tokens)) for tokens, _ in batch])
        labels = torch.tensor([labels + [-100] * (width - len(labels)) for _, labels in batch])
        mask = torch.tensor([[1] * len(tokens) + [0] * (width - len(tokens)) for tokens, _ in batch])
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step % 100 == 0 or step == steps - 1:
            print(f"  training step {step + 1}/{steps}: loss {loss.item():.3f}", file=sys.stderr)
    model.save_pretrained(out)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(base / name, out / name)
    return out


def measure(model: Path, test: list[dict[str, Any]], labels: list[str], repeats: int) -> dict[str, Any]:
    """Both methods on one engine, alternating: seconds and computed tokens per example, equal top 3."""
    from mft_recipes_vllm.chat import find_chat_format
    from mft_recipes_vllm.engine import EngineSettings, close_engine, open_engine
    from mft_recipes_vllm.eval_data import Example, Task
    from mft_recipes_vllm.prompts import encode_test_set, load_tokenizer
    from mft_recipes_vllm.runner import Runner
    from mft_recipes_vllm.variants import Variant

    from tests.vllm_plugin.reference import vllm_exhaustive_scores

    examples = [
        Example(index, row["messages"][:-1], row["messages"][-1]["content"]) for index, row in enumerate(test)
    ]
    task = Task("classification", labels, (1, 3))
    encoded = encode_test_set(examples, task, find_chat_format(None, str(model)), load_tokenizer(str(model)))
    llm = open_engine(str(model), EngineSettings(max_model_len=512, dtype="float32", enforce_eager=True))
    runner = Runner(llm, Variant("model", str(model)), task, encoded)
    prompts = encoded.prompts
    exhaustive_tokens = sum(
        len(prompt) + len(answer) for prompt in prompts for answer in encoded.continuations.values()
    )
    seconds: dict[str, list[float]] = {"exhaustive": [], "trie": []}
    trie_tokens, nodes, hits = [], [], 0
    for repeat in range(repeats):
        for method in ("exhaustive", "trie") if repeat % 2 == 0 else ("trie", "exhaustive"):
            llm.reset_prefix_cache()  # each round starts cold: nothing left from the other method or round
            started = time.perf_counter()
            if method == "exhaustive":
                scores = vllm_exhaustive_scores(llm, prompts, encoded.continuations)
            else:
                records: list[dict[str, Any]] = [{} for _ in prompts]
                counts = runner.rank_labels(prompts, records)
            seconds[method].append((time.perf_counter() - started) / len(prompts))
        trie_tokens.append(counts["scored_tokens"] / len(prompts))
        nodes.append(counts["ranked_nodes"] / len(prompts))
        for record, by_label in zip(records, scores, strict=True):
            best = sorted(labels, key=lambda label: -by_label[label])[:3]
            assert record["ranking"] == best, (record["ranking"], best)
        if repeat == 0:
            hits = sum(
                record["ranking"][0] == example.reference
                for record, example in zip(records, examples, strict=True)
            )
    close_engine(llm)
    return {
        "exhaustive_s": statistics.median(seconds["exhaustive"]),
        "trie_s": statistics.median(seconds["trie"]),
        "exhaustive_tokens": exhaustive_tokens / len(prompts),
        "trie_tokens": statistics.median(trie_tokens),
        "nodes": statistics.median(nodes),
        "prompt_tokens": statistics.mean(len(prompt) for prompt in prompts),
        "top1": hits / len(prompts),
        "rounds_s": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=24, help="test examples ranked per round")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-steps", type=int, default=300)
    args = parser.parse_args()

    from mft_recipes_vllm.engine import vllm_identity

    from mft_recipes import CategoryPath
    from tests.products import products, taxonomy
    from tests.tiny_models import build_tiny_model

    work = Path(tempfile.mkdtemp(prefix="classification-ranking-"))
    base = build_tiny_model(
        work / "untrained", hidden_size=128, num_heads=4, num_kv_heads=2, intermediate_size=256
    )
    labels = [CategoryPath.join(list(path)) for path in taxonomy(340)]
    rows = chats(products(4000 + args.examples, seed=1))
    test, training = rows[: args.examples], rows[args.examples :]
    started = time.perf_counter()
    trained = train(base, work / "trained", training, args.train_steps)
    print(
        f"trained the tiny model on {len(training):,} products in {time.perf_counter() - started:.0f} s",
        file=sys.stderr,
    )

    results = {
        name: measure(model, test, labels, args.repeats)
        for name, model in (("untrained", base), ("trained", trained))
    }
    identity = vllm_identity()
    print(
        f"{identity['distribution']} {identity['version']} on {identity['device']}; {len(labels)} labels "
        f"(10 top categories, 34 below, 340 leaves), {args.examples} examples, {args.repeats} alternating rounds, "
        "medians"
    )
    print(f"{'model':<10} {'top-1':>6} {'method':<11} {'s/example':>10} {'tokens/example':>15} {'nodes':>6}")
    for name, result in results.items():
        print(
            f"{name:<10} {result['top1']:>6.2f} {'exhaustive':<11} {result['exhaustive_s']:>10.3f} {result['exhaustive_tokens']:>15,.0f} {len(labels):>6}"
        )
        print(
            f"{'':<10} {'':>6} {'trie':<11} {result['trie_s']:>10.3f} {result['trie_tokens']:>15,.0f} {result['nodes']:>6.0f}"
        )
        print(
            f"{'':<10} {'':>6} {'speed-up':<11} {result['exhaustive_s'] / result['trie_s']:>9.1f}× "
            f"{result['exhaustive_tokens'] / result['trie_tokens']:>14.1f}×  (prompt {result['prompt_tokens']:.0f} tokens)"
        )
    print("top 3 of the trie = top 3 of exhaustive scoring, every example, every round")


if __name__ == "__main__":
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    main()
