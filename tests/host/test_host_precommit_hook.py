"""The pre-commit hook in .pre-commit-hooks.yaml runs `mft-recipes validate` on the right files."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import REPO, clean_env

(HOOK,) = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))


def test_the_hook_runs_the_validate_command_of_this_distribution() -> None:
    program, command = HOOK["entry"].split()
    assert (HOOK["id"], program, command) == ("mft-recipes-validate", "mft-recipes", "validate")
    scripts = metadata.distribution("mft-recipes").entry_points.select(group="console_scripts")
    assert program in scripts.names, "pre-commit installs this repository and runs its console script"
    assert HOOK["language"] == "python"


@pytest.mark.parametrize(
    "path, picked",
    [
        ("axolotl/mixtral.yml", True),
        ("configs/fine-tuning/job.json", True),
        ("finetune/qlora.yaml", True),
        ("ml/training/8x22b.yaml", True),
        (".github/workflows/ci.yml", False),
        ("mkdocs.yml", False),
        ("axolotl/README.md", False),
    ],
)
def test_the_default_files_pattern(path: str, picked: bool) -> None:
    """pre-commit matches `files` with Python's re.search on the repository-relative path."""
    assert bool(re.search(HOOK["files"], path)) is picked


def test_the_readme_snippet_offers_this_hook_at_a_rev_that_exists() -> None:
    """The snippet users paste: it names this hook, and a rev that exists (no release is tagged, so a
    named tag would fail `pre-commit install` with 'rev not found')."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    snippet = readme[readme.index("    repos:\n") :].split("\n\n")[0]
    (repo,) = yaml.safe_load(textwrap.dedent(snippet))["repos"]
    assert [hook["id"] for hook in repo["hooks"]] == [HOOK["id"]]
    tags = subprocess.run(
        ["git", "-C", str(REPO), "tag", "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert repo["rev"] == "main" or repo["rev"] in tags, f"rev {repo['rev']!r}: tags are {tags}"
    assert "pre-commit autoupdate --bleeding-edge --freeze" in " ".join(readme.split())


def run_hook(*files: Path) -> subprocess.CompletedProcess[Any]:
    """The command line pre-commit runs: the entry, then the staged file names."""
    program = Path(sys.executable).parent / HOOK["entry"].split()[0]
    return subprocess.run(
        [str(program), *HOOK["entry"].split()[1:], *map(str, files)],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )


def test_the_hook_passes_good_configs_and_fails_bad_ones(tmp_path: Path) -> None:
    good = tmp_path / "good.yml"
    rendered = subprocess.run(
        [
            sys.executable,
            "-m",
            "mft_recipes",
            "render",
            "mixtral-moe",
            "dataset=train.jsonl",
            "-o",
            str(good),
        ],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )
    assert rendered.returncode == 0, rendered.stderr
    assert run_hook(good).returncode == 0

    bad = tmp_path / "bad.yml"
    bad.write_text(good.read_text().replace("lora_dropout: 0.0", "lora_dropout: 0.1"))
    assert bad.read_text() != good.read_text()
    result = run_hook(good, bad)
    assert result.returncode == 1
    assert f"{bad}: invalid (axolotl)" in result.stdout
    assert "[expert-lora-dropout]" in result.stderr
