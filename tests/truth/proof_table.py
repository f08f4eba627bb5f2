"""The proof tables in README.md. The proof table: each axolotl recipe, the axolotl versions the truth
tier proves it with, its trainable parameters and the checks it passes there, generated from the tier's
own case list (tests/truth/cases.py) and the pins in noxfile.py, so it says what CI runs; the trainable
counts are the closed form that check 2 asserts equal to peft's own count. The parity table: how often
fast `validate` gives axolotl's own verdict on the parity corpus, from the counts the parity test checks
(tests/truth/parity_counts.json, written by `python -m tests.truth.parity` in each axolotl venv).

    python -m tests.truth.proof_table          # rewrite both tables in README.md
    python -m tests.truth.proof_table --check  # exit 1 when one is out of date (the fast tier runs this)
"""

from __future__ import annotations

import re
import sys

from mft_recipes_plan.counts import count_parameters
from packaging.version import Version

from mft_recipes.host import get_registry
from mft_recipes.recipes import Recipe
from scripts.markers import replace_part, update_part
from tests.trl_tier import cases as trl_cases
from tests.truth.cases import CHECKS, KNOWN_BROKEN, REPO, axolotl_recipes, checks_for, overrides_for, render
from tests.truth.parity import OUTCOMES, committed_counts

PROOF = REPO / "README.md"
PART = "proof-table"
PARITY_PART = "parity-table"
# Checks the axolotl_latest session runs (all but the CPU training run, check 3).
LATEST_CHECKS = (1, 2, 4, 5, 6)


def pinned(name: str) -> str:
    """A version pinned in noxfile.py: `AXOLOTL = "axolotl==0.19.0"` → "0.19.0"."""
    match = re.search(rf'^{name} = "[\w-]+==([^"]+)"', (REPO / "noxfile.py").read_text(), re.MULTILINE)
    assert match, f"noxfile.py pins no {name}"
    return match.group(1)


def table() -> str:
    registry = get_registry()
    current, latest = pinned("AXOLOTL"), pinned("AXOLOTL_LATEST")
    lines = [
        f"| recipe | model | method | GPUs | trainable parameters | axolotl {current} (Python 3.11) "
        f"| axolotl {latest} (Python 3.12) | TRL {pinned('TRL')}, peft {pinned('TRL_PEFT')} (Python 3.11) |",
        "|---|---|---|---|---:|---|---|---|",
    ]
    trl_names = {recipe.name: recipe for recipe in trl_cases.trl_recipes()}
    notes: list[str] = []
    for recipe in axolotl_recipes():
        document = render(recipe, overrides_for(recipe, "defaults"))
        count = count_parameters(registry.architectures[recipe.model], document)
        share = f"{100 * count.trainable / count.total:.2f}%"
        checks = checks_for(recipe)
        broken = KNOWN_BROKEN.get(recipe.name)
        fails_pinned = broken is not None and Version(pinned(broken[0].upper())) < Version(broken[1])
        pinned_checks = [f"{check} ✗" if check == 5 and fails_pinned else str(check) for check in checks]
        lines.append(
            f"| `{recipe.name}` | {recipe.model} | {recipe.method} | {recipe.hardware.gpus}× {recipe.hardware.gpu} "
            f"| {count.trainable:,} ({share}) | {', '.join(pinned_checks)} "
            f"| {', '.join(str(check) for check in checks if check in LATEST_CHECKS)} "
            f"| {_trl_cell(trl_names.get(recipe.name))} |"
        )
        if fails_pinned and broken:
            notes.append(f"`{recipe.name}` ✗ with axolotl {current}: {broken[2]}.")
    lines += ["", "Checks:", ""] + [f"{number}. {text}" for number, text in CHECKS.items()]
    lines += ["", "TRL checks (`nox -s trl`, tests/trl_tier):", ""]
    lines += [f"- T{number}: {text}" for number, text in trl_cases.CHECKS.items()]
    notes += [
        f"`{name}` under TRL: device=cpu only; TRL cannot quantize Mixtral's fused experts "
        "(quantize_moe_experts), so `render --target trl` refuses the GPU profile and says why."
        for name in sorted(trl_cases.CPU_ONLY)
    ]
    lines += ["", *notes] if notes else []
    return "\n".join(lines)


def _trl_cell(recipe: Recipe | None) -> str:
    if recipe is None:
        return "—"
    cell = ", ".join(f"T{check}" for check in trl_cases.checks_for(recipe))
    return cell + (" (CPU)" if recipe.name in trl_cases.CPU_ONLY else "")


def parity_table() -> str:
    """The confusion counts of the parity test, by axolotl version and part of the corpus."""
    recorded = committed_counts()
    lines = [
        "| axolotl | corpus | configs | true accept | true refuse | false accept | false refuse (intended) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name in ("AXOLOTL", "AXOLOTL_LATEST"):
        version = pinned(name)
        for part, tally in recorded.get(version, {}).items():
            shown = (
                f"{version}{' (pinned)' if name == 'AXOLOTL' else ''}" if part == "published examples" else ""
            )
            counts = [tally[outcome] for outcome in ("documents", *OUTCOMES)]
            lines.append(
                f"| {shown} | {part} | " + " | ".join(map(str, counts)) + f" ({tally['intended']}) |"
            )
    return "\n".join(lines)


def updated(text: str) -> str:
    text = replace_part(text, PART, table(), where=PROOF.name)
    return replace_part(text, PARITY_PART, parity_table(), where=PROOF.name)


def main(argv: list[str]) -> int:
    command = "python -m tests.truth.proof_table"
    return max(
        update_part(PROOF, part, content, check="--check" in argv, command=command)
        for part, content in ((PART, table()), (PARITY_PART, parity_table()))
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
