"""Asking one variant of the model on a vLLM engine: batched predictions, the label ranking of a
classification, and single requests for latency."""

from __future__ import annotations

import time
from typing import Any

from mft_recipes_vllm.eval_data import Example, Task
from mft_recipes_vllm.prompts import EncodedTestSet
from mft_recipes_vllm.variants import Variant


class Runner:
    """One variant on its engine. Every variant is given the same prompt tokens (EncodedTestSet: the
    trained model's chat format, the base's prompts too)."""

    def __init__(self, llm: Any, variant: Variant, task: Task, encoded: EncodedTestSet) -> None:
        from vllm import SamplingParams
        from vllm.lora.request import LoRARequest
        from vllm.sampling_params import StructuredOutputsParams

        self.llm, self.variant, self.task, self.encoded = llm, variant, task, encoded
        self.lora = LoRARequest("adapter", 1, variant.lora) if variant.lora else None
        if task.kind == "classification":
            self.answer = SamplingParams(
                temperature=0,
                max_tokens=encoded.answer_tokens,
                structured_outputs=StructuredOutputsParams(choice=task.labels),
            )
            self.scoring = SamplingParams(temperature=0, max_tokens=1, prompt_logprobs=0)
        else:
            self.answer = SamplingParams(temperature=0, max_tokens=encoded.answer_tokens)

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
        """The predictions of a batch (eval-prediction records) and its token counts."""
        prompts = [self.encoded.prompts[example.index] for example in batch]
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
            counts["scored_tokens"] = self.rank_labels(prompts, records)
        return records, counts

    def rank_labels(self, prompts: list[list[int]], records: list[dict[str, Any]]) -> int:
        """Rank the label set for each example by the log-probability of each label as the answer (its
        tokens and the end of the turn); keep the first max(top_k) labels with their scores."""
        labels = self.task.labels
        sequences = [ids + self.encoded.continuations[label] for ids in prompts for label in labels]
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

    def latencies(self, examples: list[Example]) -> list[float]:
        """Seconds per request, one request at a time (an online client's view)."""
        seconds = []
        for example in examples:
            started = time.perf_counter()
            self.generate([self.encoded.prompts[example.index]], self.answer)
            seconds.append(time.perf_counter() - started)
        return seconds
