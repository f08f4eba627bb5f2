"""Parity between axolotl's own `validate_config` and fast `validate` (no --deep) on the corpus of
tests/truth/parity_corpus.py: the verdicts, what each names, and the confusion counts the README shows.

    python -m tests.truth.parity    # in an axolotl venv: measure, and rewrite the installed axolotl's
                                    # counts in tests/truth/parity_counts.json

Then `python -m tests.truth.proof_table` puts the counts in the README. axolotl is imported inside the
functions that run it: the fast tier imports this module for the counts file only.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mft_recipes_axolotl.refusals import REFUSED

from mft_recipes.output import write_text_atomic
from mft_recipes.problems import Problem
from tests.truth.parity_corpus import EXAMPLES, CorpusDocument, corpus

COUNTS = Path(__file__).with_name("parity_counts.json")
GPUS = Path(__file__).with_name("parity_gpus.yaml")
OUTCOMES = ("true accept", "true refuse", "false accept", "false refuse")

# Configs axolotl accepts that `validate` refuses on purpose, by problem code: each trains something
# other than what it says, or stops after the GPU is rented. Anything else `validate` refuses that axolotl
# accepts is a false refusal, and the parity test fails on it.
INTENDED_STRICTNESS = {
    "unknown-key": "a key axolotl does not know: axolotl drops it without a word, so a typo or a key of an "
    "unlisted plugin trains with the default (test_truth_validation.py: the typo test)",
    "moe-experts-not-trained": "Mixtral LoRA that trains no expert: lora_target_linear and Linear-module targets "
    "miss the fused expert parameters of transformers 5.x (test_truth_architecture.py: peft on the real "
    "architecture adapts attention only)",
    "expert-lora-dropout": "expert LoRA with lora_dropout: peft's ParamWrapper refuses dropout and training stops "
    "at the first step (test_truth_training.py)",
    "chat-template-missing": "type: chat_template on a tokenizer without a chat template (published base models): "
    "axolotl stops at data loading, after the download (test_truth_chat_format.py, docs/chat-format.md)",
    "mistral-chat-type": "a Mistral chat dataset type of another tokenizer version than the model's: its ids "
    "name other pieces, and the dataset type refuses the model's tokenizer at data loading "
    "(test_truth_chat_format.py)",
}


@dataclass(frozen=True)
class Changes:
    """How a later axolotl judges the corpus differently from the pinned one whose validators the rules
    restate: words it says that the pinned one does not (new refusals, reworded ones), and refusals of the
    pinned one it no longer makes (fragments of the restated rule's words). Each with what changed."""

    says_newly: dict[str, str]
    no_longer: dict[str, str]

    def explains_refusal(self, error: AxolotlError) -> bool:
        return any(fragment in error.message for fragment in self.says_newly)

    def explains_problem(self, problem: Problem) -> bool:
        return problem.message.startswith(REFUSED) and any(
            fragment in problem.message for fragment in self.no_longer
        )


FSDP1_REMOVED = "0.21 removed FSDP1: it refuses the top-level `fsdp` list and FSDP1-only fsdp_config keys"
# The parity test on a version listed here checks that every disagreement is one of these, and each occurs.
CHANGED_IN = {
    "0.21.0": Changes(
        says_newly={
            "The top-level `fsdp` list is no longer supported": FSDP1_REMOVED,
            "is an FSDP1-only option and FSDP1 has been removed": FSDP1_REMOVED,
            "fp8_enable_fsdp_float8_all_gather requires FSDP2 (fsdp_config)": "reworded: FSDP2 is fsdp_config",
            "FSDP2 does not support load_in_8bit or load_in_4bit with dpo. Please use DeepSpeed instead.": "reworded: "
            "no FSDP1 to fall back to",
            "q_galore_adamw8bit is not yet validated with DeepSpeed. Use DDP or FSDP2.": "reworded",
            "cannot be saved while a fused LoRA kernel is enabled": "reworded: the fused LoRA kernels, not peft",
            "it should now be a key under `model_config`": "reworded (0.19 says 'be be')",
            "'sdpa', 'varlen', 'xformers']": "a new attention backend, varlen",
            "(so the generation batch size 12 is a multiple of 3)": "reworded hint",
        },
        no_longer={
            "`dpo_use_liger_kernel` does not support the `ipo` loss type": "accepted by 0.21",
            "GRPO with world_size=": "accepted by 0.21",
            "q_galore_adamw8bit requires fsdp_config.use_orig_params=True": "accepted by 0.21 (FSDP2 only)",
            "context_parallel_size > 1 requires attn_implementation: flash_attention_2": "0.21's context "
            "parallelism wraps sdpa and flex attention too",
            "due to a `ring-flash-attn` requirement": "0.21's context parallelism packs without ring-flash-attn",
            "nvfp4_merge_aware": "0.21's kernels plugin moved nvfp4_merge_aware into the LoRA settings",
        },
    ),
}


@dataclass(frozen=True)
class AxolotlError:
    """One thing axolotl names when it refuses: the key path pydantic gives (empty for a validator of the
    whole config), the message's first line, and whether it is a validator's own message (a ValueError or
    another exception) rather than pydantic's type check of a field."""

    path: tuple[str | int, ...]
    message: str
    from_validator: bool


@dataclass(frozen=True)
class Verdict:
    """axolotl's and fast `validate`'s verdicts on one corpus document."""

    document: CorpusDocument
    axolotl: tuple[AxolotlError, ...]  # empty: axolotl accepts it
    errors: tuple[Problem, ...]  # fast validate's errors (warnings are not verdicts)

    @property
    def outcome(self) -> str:
        truth = "refuse" if self.axolotl else "accept"
        said = "refuse" if self.errors else "accept"
        return f"{'true' if truth == said else 'false'} {said}"

    @property
    def intended(self) -> bool:
        """A false refusal that is intended strictness only."""
        return bool(self.errors) and all(problem.code in INTENDED_STRICTNESS for problem in self.errors)

    def unnamed(self) -> list[AxolotlError]:
        """What axolotl names that none of fast validate's errors names (see `names`)."""
        return [error for error in self.axolotl if not any(names(problem, error) for problem in self.errors)]


def names(problem: Problem, error: AxolotlError) -> bool:
    """Whether a problem of fast validate names what axolotl names: a validator's message in axolotl's
    own words (a restated rule may stop before a tail that describes the machine axolotl runs on, such
    as its installed transformers), a field's type error at that field."""
    if not error.from_validator:
        return problem.path[:1] == error.path[:1]
    said, message = canonical(error.message), canonical(problem.message)
    rule = message.removeprefix(REFUSED) if message.startswith(REFUSED) else None
    return said in message or (rule is not None and said.startswith(rule))


def canonical(message: str) -> str:
    """A message with the members of each printed Python set sorted: axolotl prints sets (its supported
    metrics) in hash order, which changes from one process to the next."""

    def sort_members(match: re.Match[str]) -> str:
        return "{" + ", ".join(sorted(match.group(1).split(", "))) + "}"

    return re.sub(r"\{('[^{}]*')\}", sort_members, message)


def axolotl_errors(document: CorpusDocument) -> tuple[AxolotlError, ...]:
    """What the installed axolotl's validate_config says of the document, with the GPUs it is meant for.
    The plugins it lists are registered first, as axolotl's load_cfg does, so that their argument models
    are merged into the config model; their register(cfg) hooks, which start servers, clone repositories
    or set environment variables, are not run (none of them validates anything validate_config does not).
    """
    from axolotl.integrations.base import PluginManager
    from axolotl.utils.config import validate_config
    from axolotl.utils.dict import DictDefault
    from mft_recipes_axolotl.deep import gpu_capabilities
    from pydantic import ValidationError

    manager = PluginManager.get_instance()
    manager.plugins.clear()  # a singleton: plugins of the previous document must not apply
    config = DictDefault(json.loads(json.dumps(document.data)))
    capabilities, environment = gpu_capabilities(document.gpus, document.gpu)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            for plugin in config.get("plugins") or []:
                manager.register(plugin)
            validate_config(config, capabilities=capabilities, env_capabilities=environment)
    except ValidationError as error:
        return tuple(_pydantic_error(detail) for detail in error.errors())
    except Exception as error:  # validators that raise other exceptions (DeprecationWarning, ...)
        return (AxolotlError((), str(error).splitlines()[0], True),)
    return ()


def _pydantic_error(detail: Any) -> AxolotlError:
    message = str(detail["msg"])
    from_validator = detail["type"] == "value_error"
    first_line = message.removeprefix("Value error, ").splitlines()[0] if message else ""
    return AxolotlError(tuple(detail["loc"]), first_line, from_validator)


def fast_errors(document: CorpusDocument) -> tuple[Problem, ...]:
    """Fast `validate`'s errors on the document, told the GPUs it is meant for, with relative paths
    resolving against the examples' folder (the working directory while the corpus runs)."""
    from mft_recipes.host import get_registry
    from mft_recipes.validation import validate_document

    found = validate_document(
        document.data,
        "axolotl",
        get_registry(),
        file=document.file,
        gpus=document.gpus,
        gpu=document.gpu,
        cwd=str(EXAMPLES),
    )
    return tuple(problem for problem in found if problem.is_error)


@contextlib.contextmanager
def launched_from_the_examples() -> Iterator[None]:
    """Run as axolotl would be launched for the corpus: from the examples' folder (relative paths in them
    resolve there), with the corpus's extra GPUs in the GPU table both sides read, axolotl's logging off
    (a warning per hint; the verdicts are what counts)."""
    from unittest import mock

    here = Path.cwd()
    logging.disable(logging.CRITICAL)
    os.chdir(EXAMPLES)
    try:
        with mock.patch.dict(os.environ, MFT_RECIPES_GPU_TABLE=str(GPUS)):
            yield
    finally:
        os.chdir(here)
        logging.disable(logging.NOTSET)


def verdicts(documents: tuple[CorpusDocument, ...] | None = None) -> list[Verdict]:
    """Both verdicts on every document of the corpus."""
    with launched_from_the_examples(), _merged_models_kept():
        return [
            Verdict(document, axolotl_errors(document), fast_errors(document))
            for document in documents or corpus()
        ]


@contextlib.contextmanager
def _merged_models_kept() -> Iterator[None]:
    """axolotl builds its config model anew for every config that has plugins (every config, in 0.21, which
    has built-in ones): `merge_input_args` makes pydantic classes of the base model and the plugins' argument
    models, 0.1 to 0.4 s each time. What it builds depends only on those argument models, so one per set of
    them serves every config: the same classes, built once."""
    from unittest import mock

    import axolotl.utils.config
    from axolotl.integrations.base import PluginManager

    build = axolotl.utils.config.merge_input_args
    built: dict[tuple[str, ...], Any] = {}

    def merge_input_args() -> Any:
        arguments = tuple(PluginManager.get_instance().get_input_args())
        if arguments not in built:
            built[arguments] = build()
        return built[arguments]

    with mock.patch.object(axolotl.utils.config, "merge_input_args", merge_input_args):
        yield


def part_of(document: CorpusDocument) -> str:
    if document.name.startswith("recipe ") and "+" not in document.name:
        return "rendered recipes"
    return "mutations" if "+" in document.name else "published examples"


def counts(found: list[Verdict]) -> dict[str, dict[str, int]]:
    """The confusion counts by corpus part and in all; `intended` counts the false refusals that are
    intended strictness."""
    parts: dict[str, Counter[str]] = {}
    for verdict in found:
        for part in (part_of(verdict.document), "all"):
            tally = parts.setdefault(part, Counter())
            tally["documents"] += 1
            tally[verdict.outcome] += 1
            tally["intended"] += verdict.outcome == "false refuse" and verdict.intended
    order = ("published examples", "rendered recipes", "mutations", "all")
    return {part: {key: parts[part][key] for key in ("documents", *OUTCOMES, "intended")} for part in order}


def committed_counts() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(COUNTS.read_text(encoding="utf-8"))
    return loaded


def main() -> int:
    from importlib.metadata import version

    found = verdicts()
    recorded = committed_counts() if COUNTS.exists() else {}
    recorded[version("axolotl")] = counts(found)
    write_text_atomic(COUNTS, json.dumps(dict(sorted(recorded.items())), indent=2) + "\n")
    print(json.dumps(recorded[version("axolotl")], indent=2))
    print(f"wrote {COUNTS}; now run python -m tests.truth.proof_table", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
