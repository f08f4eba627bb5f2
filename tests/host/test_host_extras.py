"""Each optional extra is complete alone: the wheel installed with one extra into a fresh venv runs the
commands that extra is for, and a bare install says which extra a command needs (exit 2, with the pip
command).

The light extras are installed here, each in its own venv (pip's cache makes repeats fast): `data`
(mistral-common), `platform` (mistralai, and the data extra, since `platform submit` checks the data
first) and `plot` (matplotlib). The heavy ones are what their tiers install already: `axolotl` (the truth
tiers, several GB) and `vllm` (the vLLM tier); installing them again per extra would double CI's
longest sessions for no new proof.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.platform_plugin.stand_in import StandInPlatform

from .conftest import REPO, Venv, make_venv

pytestmark = pytest.mark.slow

API_KEY = "sk-extras-test-0000"
TRAIN = REPO / "examples" / "data" / "train.jsonl"


def extra_venv(wheel: Path, factory: pytest.TempPathFactory, extra: str) -> Venv:
    venv = make_venv(factory.mktemp(extra) / "venv", f"{wheel}[{extra}]")
    shutil.copy(TRAIN, venv.cwd / "train.jsonl")
    return venv


@pytest.fixture(scope="module")
def server() -> Iterator[StandInPlatform]:
    platform = StandInPlatform(API_KEY).start()
    yield platform
    platform.stop()


def test_the_data_extra_alone_checks_converts_and_splits(
    wheel: Path, tmp_path_factory: pytest.TempPathFactory
):
    venv = extra_venv(wheel, tmp_path_factory, "data")
    (venv.cwd / "faq.csv").write_text("question,answer\nWhat is 2+2?,4\nCapital of France?,Paris\n")
    for args in (
        ["data", "check", "train.jsonl", "--recipe", "mistral-7b-lora"],
        ["data", "convert", "faq.csv", "-o", "faq.jsonl", "--user", "{question}", "--assistant", "{answer}"],
        ["data", "check", "faq.jsonl"],
        ["data", "split", "train.jsonl", "--train", "t.jsonl", "--validation", "v.jsonl", "--count", "2"],
    ):
        result = venv.mft(*args)
        assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout}\n{result.stderr}"


def test_the_platform_extra_alone_submits(
    wheel: Path, tmp_path_factory: pytest.TempPathFactory, server: StandInPlatform
):
    """Against the stand-in for La Plateforme of tests/platform_plugin/stand_in.py (see there why)."""
    venv = extra_venv(wheel, tmp_path_factory, "platform")
    env = {"MISTRAL_API_KEY": API_KEY, "MFT_RECIPES_PLATFORM_MANIFEST": str(venv.cwd / "manifest.json")}
    submit = [
        "platform",
        "submit",
        "platform-mistral-7b",
        "--train",
        "train.jsonl",
        "--server-url",
        server.url,
    ]
    dry = venv.mft(*submit, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    result = venv.mft(*submit, **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == next(iter(server.jobs))
    listed = venv.mft("platform", "list", "--server-url", server.url, "--json", **env)
    assert listed.returncode == 0 and result.stdout.strip() in listed.stdout


def test_the_plot_extra_alone_plots(wheel: Path, tmp_path_factory: pytest.TempPathFactory):
    venv = extra_venv(wheel, tmp_path_factory, "plot")
    result = venv.mft("plan", "mistral-7b-lora", "--plot", "plan.png")
    assert result.returncode == 0, result.stderr
    assert (venv.cwd / "plan.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("args", "extra"),
    [
        (["data", "check", "train.jsonl"], "data"),
        (["data", "split", "train.jsonl", "--train", "t.jsonl", "--validation", "v.jsonl"], "data"),
        (["platform", "list"], "platform"),
        (["platform", "submit", "platform-mistral-7b", "--train", "train.jsonl"], "platform"),
        (["plan", "mistral-7b-lora", "--plot", "plan.png"], "plot"),
    ],
)
def test_a_bare_install_names_the_extra_a_command_needs(installed: Venv, args: list[str], extra: str):
    shutil.copy(TRAIN, installed.cwd / "train.jsonl")
    result = installed.mft(*args, MISTRAL_API_KEY=API_KEY)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"pip install 'mft-recipes[{extra}]'" in result.stderr
    assert "Traceback" not in result.stderr
