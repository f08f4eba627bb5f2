"""Ranking a label set by the log-probability of each label as the answer, exactly, without scoring every
label after every prompt.

A label's score is the sum, over the tokens of its answer (its text and the end of the turn), of the
log-probability of that token after the prompt and the tokens before it. Scoring each label on its own
(exhaustively) costs a pass over the prompt and the label for every label: 340 labels, 340 prompts. But
labels share prefixes (`Electronics > Audio > ...` is the start of every Audio leaf), so the labels'
answer tokens form a trie, and a label's score is the sum of the log-probabilities on its path from the
root. One request per trie node, the prompt and the node's prefix with vLLM's `logprob_token_ids` set to
the node's children, gives every edge leaving the node at once; vLLM's prefix caching keeps the prompt's
KV blocks, so each request computes only what follows the last cached block.

Better still, not every node is needed. Log-probabilities are at most 0, so a partial path's score bounds
the score of every label below it. Nodes are expanded best first; once k labels are complete and no
unexpanded node scores as high as the k-th of them, no other label can enter the top k, and the top k
are those exhaustive scoring gives (ties included: a node tying the k-th is still expanded, and labels of
equal score keep the label set's order, as a stable sort of the exhaustive scores does). A fine-tuned
model puts nearly all its mass on one path and the search stops after a few dozen nodes; a flat model
expands most of the trie, never more.

The search is plain Python over a `score` function, so the fast tier checks it against exhaustive
scoring; mft_recipes_vllm.runner gives it vLLM.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

# vLLM refuses more logprob_token_ids per request (vllm/sampling_params.py, MAX_LOGPROB_TOKEN_IDS).
MAX_TOKENS_PER_REQUEST = 128
# Nodes each unfinished example expands per round (one engine call for all examples): more means fewer
# rounds and more nodes that best-first order would not have needed.
NODES_PER_ROUND = 4


@dataclass(frozen=True)
class ScoreRequest:
    """Score `candidates` as the next token after `tokens`."""

    tokens: list[int]
    candidates: list[int]


@dataclass(frozen=True)
class Scored:
    """The log-probability of each candidate of a request, and the tokens the model computed for it
    (what prefix caching did not hold)."""

    logprobs: list[float]
    computed_tokens: int


# A batch of requests in, their results out, in the same order (mft_recipes_vllm.runner: one vLLM call).
ScoreFunction = Callable[[list[ScoreRequest]], list[Scored]]


@dataclass
class LabelTrie:
    """The labels' answer tokens as a trie. Node 0 is the root (the empty prefix); `children[node]` maps a
    token to the node it leads to, `depth[node]` is the length of its prefix, `parent[node]` is (the node
    above, the token from it), and `label[node]` is the index of the label whose tokens end there."""

    labels: list[str]
    children: list[dict[int, int]] = field(default_factory=lambda: [{}])
    parent: list[tuple[int, int]] = field(default_factory=lambda: [(-1, -1)])
    label: dict[int, int] = field(default_factory=dict)

    @classmethod
    def build(cls, labels: Sequence[str], answers: dict[str, list[int]]) -> LabelTrie:
        """The trie of each label's answer tokens (`answers[label]`, end of turn included)."""
        trie = cls(list(labels))
        for index, label in enumerate(labels):
            if not answers[label]:
                raise ValueError(f"label {label!r} has no answer tokens")
            node = 0
            for token in answers[label]:
                if token not in trie.children[node]:
                    trie.children[node][token] = len(trie.children)
                    trie.children.append({})
                    trie.parent.append((node, token))
                node = trie.children[node][token]
            if node in trie.label:
                raise ValueError(
                    f"labels {labels[trie.label[node]]!r} and {label!r} have the same answer tokens"
                )
            trie.label[node] = index
        return trie

    def prefix(self, node: int) -> list[int]:
        """The tokens from the root to `node`."""
        tokens = []
        while node:
            node, token = self.parent[node]
            tokens.append(token)
        return tokens[::-1]


@dataclass
class Ranking:
    """One example's best labels: `labels` (indices into the trie's labels) and their `scores`, best
    first; the trie nodes expanded and the tokens the model computed to find them."""

    labels: list[int]
    scores: list[float]
    expanded: int = 0
    computed_tokens: int = 0


class _Search:
    """One example's best-first search: the frontier (a heap of (-score, node)), the complete labels."""

    def __init__(self, trie: LabelTrie, prompt: list[int], keep: int) -> None:
        self.trie, self.prompt, self.keep = trie, prompt, keep
        self.frontier: list[tuple[float, int]] = [(-0.0, 0)]
        self.complete: list[tuple[float, int]] = []  # (score, label index)
        self.expanded = self.computed = 0

    def bar(self) -> float:
        """The k-th best complete score: a node below it cannot reach the top k (-inf until k are complete)."""
        if len(self.complete) < self.keep:
            return float("-inf")
        return heapq.nsmallest(self.keep, self.complete, key=lambda pair: (-pair[0], pair[1]))[-1][0]

    def next_nodes(self, limit: int) -> list[tuple[int, float]]:
        """Up to `limit` best nodes that may still hold a label of the top k, taken off the frontier."""
        bar = self.bar()
        chosen: list[tuple[int, float]] = []
        while self.frontier and len(chosen) < limit and -self.frontier[0][0] >= bar:
            negative, node = heapq.heappop(self.frontier)
            chosen.append((node, -negative))
        return chosen

    def add(self, node: int, score: float, logprobs: dict[int, float]) -> None:
        """The scores of `node`'s children, from the log-probabilities of their tokens."""
        for token, child in self.trie.children[node].items():
            child_score = score + logprobs[token]
            if child in self.trie.label:
                self.complete.append((child_score, self.trie.label[child]))
            if self.trie.children[child]:
                heapq.heappush(self.frontier, (-child_score, child))

    def ranking(self) -> Ranking:
        best = sorted(self.complete, key=lambda pair: (-pair[0], pair[1]))[: self.keep]
        return Ranking(
            [label for _, label in best], [score for score, _ in best], self.expanded, self.computed
        )


def rank_labels(
    trie: LabelTrie,
    prompts: list[list[int]],
    keep: int,
    score: ScoreFunction,
    nodes_per_round: int = NODES_PER_ROUND,
) -> list[Ranking]:
    """For each prompt, the `keep` best labels of `trie` and their scores, as exhaustive scoring ranks
    them (the module docstring says why), asking `score` for one batch of requests per round."""
    keep = min(keep, len(trie.labels))
    searches = [_Search(trie, prompt, keep) for prompt in prompts]
    while True:
        work: list[tuple[_Search, int, float, list[int]]] = []
        requests: list[ScoreRequest] = []
        for search in searches:
            for node, node_score in search.next_nodes(nodes_per_round):
                tokens = [*search.prompt, *trie.prefix(node)]
                candidates = list(trie.children[node])
                for start in range(0, len(candidates), MAX_TOKENS_PER_REQUEST):
                    part = candidates[start : start + MAX_TOKENS_PER_REQUEST]
                    work.append((search, node, node_score, part))
                    requests.append(ScoreRequest(tokens, part))
                search.expanded += 1
        if not requests:
            return [search.ranking() for search in searches]
        gathered: dict[tuple[int, int], dict[int, float]] = {}
        for (search, node, _, part), result in zip(work, score(requests), strict=True):
            gathered.setdefault((id(search), node), {}).update(zip(part, result.logprobs, strict=True))
            search.computed += result.computed_tokens
        for search, node, node_score, _ in work:
            logprobs = gathered.pop((id(search), node), None)
            if logprobs is not None:  # a node split over several requests is added once
                search.add(node, node_score, logprobs)
