"""Time `mft-recipes render mixtral-moe` and `mft-recipes validate` (one config, one with an axolotl plugin,
every rendered recipe), as whole processes.

A user pays for the whole process (interpreter start, imports, plugin loading), so that is what is
timed, against `python -c pass` measured in the same run: on a shared, busy machine the ratio to the
baseline is steadier than the seconds. Runs are interleaved (one of each command per round) so that
a burst of load hits every command alike. Targets: render, and validate of one config, under 0.3 s median.

    python benchmarks/render_validate.py [--rounds 21]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.host.samples: values for each recipe's required parameters

from tests.host.samples import override_word, recipe_overrides  # noqa: E402

TARGET_S = 0.3
# A rendered recipe with an axolotl plugin listed and its keys: the schema's plugin rules are exercised.
PLUGIN_KEYS = "plugins:\n- axolotl.integrations.liger.LigerPlugin\nliger_rope: true\nliger_rms_norm: true\n"


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


def time_once(command: list[str], cwd: Path) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of one run; CPU time suffers less from a busy machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21, help="runs of each command (default 21)")
    args = parser.parse_args()
    mft = mft_recipes_command()
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        files = render_all(mft, folder)
        one = next(file for file in files if file.endswith("mixtral-moe.yml"))
        with_plugin = folder / "mixtral-moe-liger.yml"
        with_plugin.write_text(Path(one).read_text(encoding="utf-8") + PLUGIN_KEYS, encoding="utf-8")
        commands = {
            "python -c pass (baseline)": [sys.executable, "-c", "pass"],
            "mft-recipes --help": [*mft, "--help"],
            "mft-recipes render mixtral-moe dataset=train.jsonl": [
                *mft,
                "render",
                "mixtral-moe",
                "dataset=train.jsonl",
            ],
            "mft-recipes validate mixtral-moe.yml": [*mft, "validate", one],
            "mft-recipes validate mixtral-moe-liger.yml (a plugin)": [*mft, "validate", str(with_plugin)],
            f"mft-recipes validate ({len(files)} rendered recipes)": [*mft, "validate", *files],
        }
        wall: dict[str, list[float]] = {label: [] for label in commands}
        cpu: dict[str, list[float]] = {label: [] for label in commands}
        for _ in range(args.rounds):
            for label, command in commands.items():
                seconds, cpu_seconds = time_once(command, folder)
                wall[label].append(seconds)
                cpu[label].append(cpu_seconds)
    baseline = statistics.median(wall["python -c pass (baseline)"])
    cpu_baseline = statistics.median(cpu["python -c pass (baseline)"])
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"
    print(f"{args.rounds} rounds, {sys.executable} (Python {sys.version.split()[0]}), load average {load}")
    print(f"{'command':<56} {'median s':>9} {'min s':>7} {'× base':>7} {'cpu s':>7} {'× base':>7}")
    for label in commands:
        median, cpu_median = statistics.median(wall[label]), statistics.median(cpu[label])
        print(
            f"{label:<56} {median:>9.3f} {min(wall[label]):>7.3f} {median / baseline:>7.1f}"
            f" {cpu_median:>7.3f} {cpu_median / cpu_baseline:>7.1f}"
        )
    for label in (
        "mft-recipes render mixtral-moe dataset=train.jsonl",
        "mft-recipes validate mixtral-moe.yml",
    ):
        median = statistics.median(wall[label])
        verdict = "meets" if median < TARGET_S else "MISSES"
        print(f"{label.split(' mixtral')[0]} median {median:.3f} s {verdict} the target of {TARGET_S} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
