"""Asking one variant of the model on a vLLM engine: batched predictions, the label ranking of a
classification, and single requests for latency."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from mft_recipes_vllm.eval_data import Example, Task
from mft_recipes_vllm.prompts import EncodedTestSet
from mft_recipes_vllm.ranking import LabelTrie, Scored, ScoreRequest, rank_labels
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
            self.trie = LabelTrie.build(task.labels, encoded.continuations)
        else:
            self.answer = SamplingParams(temperature=0, max_tokens=encoded.answer_tokens)

    def generate(self, prompts: list[list[int]], params: Any) -> list[Any]:
        """vLLM's outputs for the prompts, with `params` (one for all, or one each)."""
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
            started = time.perf_counter()
            counts.update(self.rank_labels(prompts, records))
            counts["ranking_seconds"] = time.perf_counter() - started
        return records, counts

    def rank_labels(self, prompts: list[list[int]], records: list[dict[str, Any]]) -> dict[str, int]:
        """Rank the label set for each example by the log-probability of each label as the answer (its
        tokens and the end of the turn), exactly, with the label trie (mft_recipes_vllm.ranking); keep the
        first max(top_k) labels with their scores. Returns the trie nodes expanded and the tokens the
        model computed for it."""
        rankings = rank_labels(self.trie, prompts, max(self.task.top_k), self.score)
        for record, ranking in zip(records, rankings, strict=True):
            record["ranking"] = [self.task.labels[index] for index in ranking.labels]
            record["scores"] = ranking.scores
        return {
            "ranked_nodes": sum(ranking.expanded for ranking in rankings),
            "scored_tokens": sum(ranking.computed_tokens for ranking in rankings),
        }

    def score(self, requests: Sequence[ScoreRequest]) -> list[Scored]:
        """Each request's candidates as the next token, by their log-probabilities before any sampling
        (vLLM's raw logprobs, `logprob_token_ids`). A request is a generation of one token, not a prompt
        scored with prompt_logprobs, so prefix caching holds the prompt and the label prefixes: the
        tokens computed are those after the last cached block (`num_cached_tokens`)."""
        from vllm import SamplingParams

        params = [
            SamplingParams(
                temperature=0, max_tokens=1, logprob_token_ids=request.candidates, detokenize=False
            )
            for request in requests
        ]
        outputs = self.generate([request.tokens for request in requests], params)
        return [
            Scored(
                [output.outputs[0].logprobs[0][token].logprob for token in request.candidates],
                len(output.prompt_token_ids) - (output.num_cached_tokens or 0),
            )
            for request, output in zip(requests, outputs, strict=True)
        ]

    def latencies(self, examples: list[Example]) -> list[float]:
        """Seconds per request, one request at a time (an online client's view)."""
        seconds = []
        for example in examples:
            started = time.perf_counter()
            self.generate([self.encoded.prompts[example.index]], self.answer)
            seconds.append(time.perf_counter() - started)
        return seconds
