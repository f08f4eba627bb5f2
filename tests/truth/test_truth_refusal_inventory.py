"""Every `raise` in the pinned axolotl's validators is restated by the axolotl plugin or listed, with its
reason, as one fast `validate` cannot judge (tests/truth/refusal_inventory.py). Reads axolotl's source; does
not import it. A new axolotl pin with new validators fails here until each is restated or listed."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest
from mft_recipes_axolotl.refusals import REFUSALS

from tests.truth import refusal_inventory
from tests.truth.proof_table import pinned

pytestmark = pytest.mark.axolotl


@pytest.fixture(scope="module")
def sites() -> list[refusal_inventory.RaiseSite]:
    root = refusal_inventory.axolotl_source()
    if root is None:
        pytest.skip("the truth tier needs axolotl: run `nox -s axolotl`")
    if version("axolotl") != pinned("AXOLOTL"):
        pytest.skip(
            "the rules restate the pinned axolotl's validators; test_truth_parity speaks for this one"
        )
    found = refusal_inventory.raise_sites(Path(root))
    restated = sum(bool(refusal_inventory.restated_by(site)) for site in found)
    print(
        f"\naxolotl {version('axolotl')}: {len(found)} raise sites, {restated} restated, {len(found) - restated} not"
    )
    return found


def test_every_raise_site_is_restated_or_listed_with_its_reason(
    sites: list[refusal_inventory.RaiseSite],
) -> None:
    unaccounted = [
        f"{site.file}:{site.line} {site.validator}: {site.message[:90]}"
        for site in sites
        if bool(refusal_inventory.restated_by(site)) == bool(refusal_inventory.not_restated(site))
    ]
    assert unaccounted == []


def test_every_rule_and_every_listed_reason_is_a_raise_site_of_axolotl(
    sites: list[refusal_inventory.RaiseSite],
) -> None:
    """No rule restates a refusal axolotl does not make, and the list names none that is gone."""
    rules = {id(refusal) for site in sites for refusal in refusal_inventory.restated_by(site)}
    listed = {key for site in sites for key in refusal_inventory.not_restated(site)}
    assert [refusal.says for refusal in REFUSALS if id(refusal) not in rules] == []
    assert set(refusal_inventory.NOT_RESTATED) - listed == set()
