"""Parity: on a corpus of real configs (axolotl's own published examples, every recipe's rendered output,
and mutations of both; tests/truth/parity_corpus.py), fast `validate` (no --deep, no axolotl import) gives
the verdict the installed axolotl's own `validate_config` gives:

- every config axolotl refuses, `validate` refuses, naming what axolotl names;
- every config axolotl accepts, `validate` passes, unless it is intended strictness (parity.INTENDED_STRICTNESS);
- every refusal the axolotl plugin restates meets axolotl's own refusal somewhere in the corpus;
- the confusion counts are the ones the README shows (tests/truth/parity_counts.json).

Run on both axolotl venvs with the same corpus (the pinned release's examples): the rules restate axolotl
0.19's validators, and on a newer axolotl the test lists where its validation has moved (parity.CHANGED_IN).
"""

from __future__ import annotations

from importlib.metadata import version

import pytest
from mft_recipes_axolotl.refusals import REFUSALS, AxolotlConfig

from mft_recipes.validation import ValidationContext
from tests.truth import parity
from tests.truth.proof_table import pinned

pytestmark = [pytest.mark.axolotl, pytest.mark.usefixtures("axolotl_installed")]


def is_pinned() -> bool:
    return version("axolotl") == pinned("AXOLOTL")


@pytest.fixture(scope="module")
def changes() -> parity.Changes:
    """What the installed axolotl judges differently from the pinned one (nothing, for the pinned one)."""
    return parity.CHANGED_IN.get(version("axolotl"), parity.Changes({}, {}))


@pytest.fixture(scope="module")
def verdicts() -> list[parity.Verdict]:
    found = parity.verdicts()
    counts = parity.counts(found)
    print(f"\nparity with axolotl {version('axolotl')} on {counts['all']['documents']} configs:")
    for part, tally in counts.items():
        print(f"  {part}: " + ", ".join(f"{key} {tally[key]}" for key in (*parity.OUTCOMES, "intended")))
    return found


def test_every_config_axolotl_refuses_is_refused_naming_what_axolotl_names(
    verdicts: list[parity.Verdict], changes: parity.Changes
) -> None:
    missed = []
    for verdict in verdicts:
        unnamed = [error for error in verdict.unnamed() if not changes.explains_refusal(error)]
        if unnamed:
            said = [str(problem) for problem in verdict.errors]
            missed.append(
                f"{verdict.document.name}: axolotl says {[e.message for e in unnamed]}, validate {said}"
            )
    assert missed == []


def test_every_config_axolotl_accepts_passes_unless_intended_strictness(
    verdicts: list[parity.Verdict], changes: parity.Changes
) -> None:
    refused = []
    for verdict in verdicts:
        if verdict.outcome != "false refuse":
            continue
        unintended = [
            str(problem)
            for problem in verdict.errors
            if problem.code not in parity.INTENDED_STRICTNESS and not changes.explains_problem(problem)
        ]
        if unintended:
            refused.append(f"{verdict.document.name}: {unintended}")
    assert refused == []


def test_each_listed_change_of_this_axolotl_occurs_in_the_corpus(
    verdicts: list[parity.Verdict], changes: parity.Changes
) -> None:
    """The list of what a later axolotl judges differently holds nothing that no longer happens; the pinned
    axolotl has no such list (the rules restate it)."""
    assert not is_pinned() or version("axolotl") not in parity.CHANGED_IN
    said = [error for verdict in verdicts for error in verdict.axolotl]
    refused_by_us_only = [
        problem for verdict in verdicts if verdict.outcome == "false refuse" for problem in verdict.errors
    ]
    assert [
        fragment for fragment in changes.says_newly if not any(fragment in error.message for error in said)
    ] == []
    assert [
        fragment
        for fragment in changes.no_longer
        if not any(fragment in problem.message for problem in refused_by_us_only)
    ] == []


def test_the_corpus_exercises_the_intended_strictness(verdicts: list[parity.Verdict]) -> None:
    """Each kind of intended strictness is met on a config axolotl accepts (or it is not a list of what
    `validate` does beyond axolotl, but of what it might)."""
    met = {
        problem.code
        for verdict in verdicts
        if verdict.outcome == "false refuse"
        for problem in verdict.errors
    }
    assert set(parity.INTENDED_STRICTNESS) <= met


def test_every_restated_refusal_meets_axolotls_own_in_the_corpus(verdicts: list[parity.Verdict]) -> None:
    """Each rule of the axolotl plugin's refusals/ finds a config of the corpus that axolotl refuses
    with the rule's own words: the rule's condition and message are axolotl's, not a guess. (The rules
    restate the pinned axolotl; the axolotl_latest session leaves this test out.)"""
    assert is_pinned(), "the rules restate the pinned axolotl's validators; run this with it"
    from mft_recipes.host import get_registry

    exercised = set()
    with parity.launched_from_the_examples():
        for verdict in verdicts:
            document = verdict.document
            context = ValidationContext(
                "axolotl", get_registry().architecture_view, gpus=document.gpus, gpu=document.gpu
            )
            config = AxolotlConfig(document.data, context)
            said = [error for error in verdict.axolotl if error.from_validator]
            for index, refusal in enumerate(REFUSALS):
                if any(
                    parity.names(problem, error) for problem in refusal.problems(config) for error in said
                ):
                    exercised.add(index)
    assert [
        f"{rule.validator}: {rule.says}" for index, rule in enumerate(REFUSALS) if index not in exercised
    ] == []


def test_the_counts_are_the_ones_the_readme_shows(verdicts: list[parity.Verdict]) -> None:
    committed = parity.committed_counts().get(version("axolotl"))
    assert committed == parity.counts(verdicts), (
        "the parity counts changed: run `python -m tests.truth.parity` in this venv, then "
        "`python -m tests.truth.proof_table`"
    )
