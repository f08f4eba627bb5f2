"""Time `mft-recipes render mixtral-moe` and `mft-recipes validate` on every rendered recipe, as whole processes.

A user pays for the whole process (interpreter start, imports, plugin loading), so that is what is
timed, against `python -c pass` measured in the same run: on a shared, busy machine the ratio to the
baseline is steadier than the seconds. Runs are interleaved (one of each command per round) so that
a burst of load hits every command alike. Target: render under 0.3 s median.

    python benchmarks/render_validate.py [--rounds 21]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.host.samples: values for each recipe's required parameters

from tests.host.samples import override_word, recipe_overrides  # noqa: E402

RENDER_TARGET_S = 0.3


def mft_recipes_command() -> list[str]:
    """The console script next to this interpreter (what `pip install` put there)."""
    script = Path(sys.executable).parent / "mft-recipes"
    return [str(script)] if script.exists() else [sys.executable, "-m", "mft_recipes"]


def render_all(mft: list[str], folder: Path) -> list[str]:
    """Render every registered recipe once (with its required parameters) and return the files."""
    from mft_recipes.host import get_registry

    files = []
    for name, recipe in sorted(get_registry().recipes.items()):
        path = folder / f"{name}.{'json' if recipe.target == 'la-plateforme' else 'yml'}"
        words = [override_word(key, value) for key, value in recipe_overrides(recipe).items()]
        subprocess.run([*mft, "render", name, *words, "-o", str(path)], check=True, capture_output=True)
        files.append(str(path))
    return files


def time_once(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21, help="runs of each command (default 21)")
    args = parser.parse_args()
    mft = mft_recipes_command()
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        files = render_all(mft, folder)
        commands = {
            "python -c pass (baseline)": [sys.executable, "-c", "pass"],
            "mft-recipes --help": [*mft, "--help"],
            "mft-recipes render mixtral-moe dataset=train.jsonl": [
                *mft,
                "render",
                "mixtral-moe",
                "dataset=train.jsonl",
            ],
            f"mft-recipes validate ({len(files)} rendered recipes)": [*mft, "validate", *files],
        }
        times: dict[str, list[float]] = {label: [] for label in commands}
        for _ in range(args.rounds):
            for label, command in commands.items():
                times[label].append(time_once(command, folder))
    baseline = statistics.median(times["python -c pass (baseline)"])
    print(f"{args.rounds} rounds, {sys.executable} (Python {sys.version.split()[0]})")
    print(f"{'command':<58} {'median s':>9} {'min s':>7} {'× baseline':>11}")
    for label, samples in times.items():
        median = statistics.median(samples)
        print(f"{label:<58} {median:>9.3f} {min(samples):>7.3f} {median / baseline:>11.1f}")
    render = statistics.median(times["mft-recipes render mixtral-moe dataset=train.jsonl"])
    verdict = "meets" if render < RENDER_TARGET_S else "MISSES"
    print(f"render median {render:.3f} s {verdict} the target of {RENDER_TARGET_S} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
