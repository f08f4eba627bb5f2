"""The label ranking's search (no vLLM: these run in the fast tier): on any label trie and any model, the
best-first trie search returns the top k of exhaustive scoring, ties in the label set's order, and asks
for fewer positions. The vLLM tier compares it with vLLM's own exhaustive scores
(test_vllm_ranking.py)."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mft_recipes_vllm.ranking import MAX_TOKENS_PER_REQUEST, LabelTrie, Scored, ScoreRequest, rank_labels


class ToyModel:
    """A made-up language model: the log-probability of a token after a context is a deterministic
    function of both, normalised over a vocabulary of `vocab` tokens, so that probabilities sum to 1.
    `sharp` spreads the logits wider; `tie` makes every token as likely (labels of a length tie)."""

    def __init__(self, vocab: int, seed: int, sharp: bool = False, tie: bool = False) -> None:
        self.vocab, self.seed, self.sharp, self.tie = vocab, seed, sharp, tie
        self.positions = 0

    def boost(self, context: tuple[int, ...]) -> dict[int, float]:
        return {}

    def logprobs(self, context: tuple[int, ...]) -> list[float]:
        rng = random.Random(hash((self.seed, context)))
        if self.tie:
            return [-math.log(self.vocab)] * self.vocab
        logits = [rng.gauss(0, 3 if self.sharp else 0.5) for _ in range(self.vocab)]
        for token, extra in self.boost(context).items():
            logits[token] += extra
        top = max(logits)
        total = top + math.log(sum(math.exp(logit - top) for logit in logits))
        return [logit - total for logit in logits]

    def score(self, requests: list[ScoreRequest]) -> list[Scored]:
        results = []
        for request in requests:
            assert len(request.candidates) <= MAX_TOKENS_PER_REQUEST
            logprobs = self.logprobs(tuple(request.tokens))
            results.append(Scored([logprobs[token] for token in request.candidates], 1))
            self.positions += 1
        return results

    def exhaustive(self, prompt: list[int], answer: list[int]) -> float:
        return sum(self.logprobs(tuple(prompt + answer[:index]))[token] for index, token in enumerate(answer))


def exhaustive_ranking(model: ToyModel, prompt: list[int], labels: list[str], answers: dict[str, list[int]]):
    scores = [model.exhaustive(prompt, answers[label]) for label in labels]
    order = sorted(range(len(labels)), key=lambda index: -scores[index])  # stable: ties in label order
    return order, scores


answer_sets = st.lists(
    st.lists(st.integers(0, 5), min_size=1, max_size=5), min_size=1, max_size=40, unique_by=tuple
)


@settings(max_examples=150, deadline=None)
@given(answer_sets, st.integers(1, 6), st.integers(0, 10**6), st.booleans(), st.booleans())
def test_the_search_gives_the_top_k_of_exhaustive_scoring(
    answers_list: list[list[int]], keep: int, seed: int, sharp: bool, tie: bool
) -> None:
    labels = [f"label {index}" for index in range(len(answers_list))]
    answers = dict(zip(labels, answers_list, strict=True))
    trie = LabelTrie.build(labels, answers)
    model = ToyModel(vocab=6, seed=seed, sharp=sharp, tie=tie)
    prompts = [[7, 8], [9]]
    rankings = rank_labels(trie, prompts, keep, model.score)
    for prompt, ranking in zip(prompts, rankings, strict=True):
        order, scores = exhaustive_ranking(model, prompt, labels, answers)
        expected = order[: min(keep, len(labels))]
        assert ranking.scores == pytest.approx([scores[index] for index in expected], abs=1e-9)
        # Equal scores may differ in the last float bit (sums in another order): the ranking must agree
        # wherever exhaustive scores differ by more than that.
        assert [round(scores[index], 9) for index in ranking.labels] == [
            round(scores[index], 9) for index in expected
        ]
        if tie or all(
            abs(scores[a] - scores[b]) > 1e-9 for a in expected for b in range(len(labels)) if a != b
        ):
            assert ranking.labels == expected
        # Each node with children is asked for once at most (a label may end where another goes on).
        assert ranking.expanded <= sum(1 for children in trie.children if children)


def product_answers(rng: random.Random) -> tuple[list[str], dict[str, list[int]]]:
    """340 leaves under 10 × 34 categories, as token sequences: shared level-1 and level-2 prefixes."""
    answers: dict[str, list[int]] = {}
    for top in range(10):
        for middle in range(34 // 10 + (top < 4)):
            for leaf in range(10):
                path = [100 + top, 1, 200 + top * 5 + middle, 1, *rng.sample(range(300, 400), 3), 2]
                answers[f"{top} > {middle} > {leaf}"] = path
    return list(answers), answers


class TrainedModel(ToyModel):
    """What fine-tuning makes of the toy: after the prompt, the tokens that continue some label are far
    likelier than the rest, and those of one label (`answer`) likelier still."""

    def __init__(self, trie: LabelTrie, answer: list[int], prompt: list[int], seed: int) -> None:
        super().__init__(vocab=400, seed=seed)
        self.trie, self.answer, self.prompt = trie, answer, prompt

    def boost(self, context: tuple[int, ...]) -> dict[int, float]:
        written, node = list(context[len(self.prompt) :]), 0
        for token in written:
            node = self.trie.children[node][token]
        extra = dict.fromkeys(self.trie.children[node], 8.0)
        if self.answer[: len(written)] == written:
            extra[self.answer[len(written)]] = 12.0
        return extra


def test_a_trained_model_expands_a_few_nodes_an_untrained_one_most_of_the_trie() -> None:
    labels, answers = product_answers(random.Random(0))
    assert len(labels) == 340
    trie = LabelTrie.build(labels, answers)
    internal = len(trie.children) - len(trie.label)
    trained = TrainedModel(trie, answers[labels[123]], [5], seed=1)
    untrained = ToyModel(vocab=400, seed=1)
    [confident] = rank_labels(trie, [[5]], 3, trained.score)
    [unsure] = rank_labels(trie, [[5]], 3, untrained.score)
    assert confident.expanded < internal / 10 < unsure.expanded <= internal
    for model, ranking in ((trained, confident), (untrained, unsure)):
        order, _ = exhaustive_ranking(model, [5], labels, answers)
        assert ranking.labels == order[:3]
    assert confident.labels[0] == 123


def test_children_beyond_one_request_are_split_and_joined() -> None:
    labels = [f"leaf {index}" for index in range(300)]
    answers = {label: [1000 + index, 2] for index, label in enumerate(labels)}  # 300 children of the root
    model = ToyModel(vocab=1400, seed=3)
    [ranking] = rank_labels(LabelTrie.build(labels, answers), [[5]], 5, model.score)
    order, _ = exhaustive_ranking(model, [5], labels, answers)
    assert ranking.labels == order[:5]


def test_two_labels_with_the_same_answer_tokens_are_refused() -> None:
    with pytest.raises(ValueError, match="'a' and 'b' have the same answer tokens"):
        LabelTrie.build(["a", "b"], {"a": [1, 2], "b": [1, 2]})
