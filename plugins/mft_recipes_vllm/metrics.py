"""Scores over predictions and references. Pure Python: the fast test tier checks them by hand.

Generation: exact match, normalised match and token-level F1 as SQuAD defines them (lower case, no
punctuation, no articles, single spaces). Classification: top-k accuracy over a ranking of the label set,
and accuracy per level of hierarchical labels written `A > B > C`.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

from mft_recipes import Metric

LEVEL_SEPARATOR = ">"
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalise(text: str) -> str:
    """SQuAD's answer normalisation: lower case, punctuation and articles removed, whitespace collapsed."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION)).split())


def exact_match(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Share of predictions equal to their reference, surrounding whitespace aside."""
    return _mean([p.strip() == r.strip() for p, r in zip(predictions, references, strict=True)])


def normalised_match(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Share of predictions equal to their reference after `normalise`."""
    return _mean([normalise(p) == normalise(r) for p, r in zip(predictions, references, strict=True)])


def token_f1(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Mean token-level F1 between normalised prediction and reference (SQuAD's F1)."""
    return _mean([_f1(p, r) for p, r in zip(predictions, references, strict=True)])


def _f1(prediction: str, reference: str) -> float:
    predicted, expected = normalise(prediction).split(), normalise(reference).split()
    if not predicted or not expected:
        return float(predicted == expected)
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def levels(label: str) -> list[str]:
    """`A > B > C` → ["A", "B", "C"]; a flat label is one level."""
    return [part.strip() for part in label.split(LEVEL_SEPARATOR)]


def top_k_accuracy(rankings: Sequence[Sequence[str]], references: Sequence[str], k: int) -> float:
    """Share of examples whose reference is among the first `k` labels of their ranking."""
    return _mean([reference in ranking[:k] for ranking, reference in zip(rankings, references, strict=True)])


def level_accuracy(rankings: Sequence[Sequence[str]], references: Sequence[str], k: int = 1) -> list[float]:
    """Accuracy at each level of hierarchical labels: at level i, an example counts when one of its first
    `k` labels agrees with the reference on levels 1..i. As many levels as the deepest reference."""
    depth = max((len(levels(reference)) for reference in references), default=0)
    scores = []
    for level in range(1, depth + 1):
        hits = [
            any(levels(label)[:level] == levels(reference)[:level] for label in ranking[:k])
            for ranking, reference in zip(rankings, references, strict=True)
        ]
        scores.append(_mean(hits))
    return scores


def _mean(values: Sequence[bool | float]) -> float:
    return sum(values) / len(values) if values else 0.0


BUILTIN_METRICS = (
    Metric("exact_match", "prediction equals the reference (whitespace aside)", exact_match),
    Metric(
        "normalised_match", "equal after SQuAD normalisation (case, punctuation, articles)", normalised_match
    ),
    Metric("token_f1", "token-level F1 after SQuAD normalisation", token_f1),
)
