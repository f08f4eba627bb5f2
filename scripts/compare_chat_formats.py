"""Which axolotl mechanism trains Mistral's exact chat format? The measurement behind docs/chat-format.md.

For each tokenizer version, a recipe is rendered on a tiny model with Mistral's real tokenizer and no
chat template, over the test conversations of tests/conversations.py (system prompts, multi-turn,
weight 0, tool calls in v3, unicode, whitespace, literal control strings), and prepared by
`axolotl preprocess` three ways:

- mistral_chat: what the recipes write, `type: mft_recipes_axolotl.mistral_chat.<version>`;
- jinja: axolotl's `type: chat_template` with Mistral's format as `chat_template: jinja` (the template the
  recipes save with the model), tokenized by the model's Hugging Face tokenizer; over the conversations
  without tools, which the template refuses;
- mistral_common: axolotl's `type: chat_template` with `tokenizer_use_mistral_common: true`.

Both axolotl types get `message_field_training: weight`, without which axolotl trains answers that have
`weight: 0` (its chat_template strategy reads no `weight` otherwise).

Every prepared row is compared with mistral-common's `encode_chat_completion` (tokens) and with the
trained assistant messages and their EOS (labels). Run it in an environment with axolotl, from the
repository root, offline:

    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 DO_NOT_TRACK=1 .nox/axolotl/bin/python scripts/compare_chat_formats.py
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.conversations, tests.tiny_models

RECIPE_OF = {"v3": "mistral-7b-lora", "v1": "mixtral-moe"}
MECHANISMS = ("mistral_chat", "jinja", "mistral_common")


def configure(config: dict[str, Any], mechanism: str, version: str, base: Path) -> dict[str, Any]:
    """The rendered config, changed to prepare its dataset with `mechanism`."""
    from mft_recipes_catalogue.chat_format import FOLDER_NAMES, tokenizer_path

    if mechanism == "mistral_chat":
        return config
    config["datasets"][0].update(type="chat_template", message_field_training="weight")
    if mechanism == "mistral_common":
        config.pop("chat_template"), config.pop("chat_template_jinja")
        config["tokenizer_use_mistral_common"] = True
        shutil.copyfile(tokenizer_path(version), base / FOLDER_NAMES[version])  # what it loads from a folder
    return config


def measure(version: str, mechanism: str, work: Path) -> tuple[int, int, int, int]:
    """(rows, rows whose tokens are mistral-common's, of those rows whose labels are right, examples)."""
    from datasets import load_from_disk

    from tests.conversations import (
        PLAIN,
        conversations,
        decode,
        expected_trained_texts,
        reference_tokens,
        trained_spans,
    )
    from tests.tiny_models import build_tiny_model

    examples = PLAIN if mechanism == "jinja" else conversations(version)
    folder = work / f"{version}-{mechanism}"
    base = build_tiny_model(folder / "model", moe=version == "v1", tokenizer=version)
    data = folder / "data.jsonl"
    data.write_text("".join(json.dumps(example, ensure_ascii=False) + "\n" for example in examples))
    rendered = subprocess.run(
        [sys.executable, "-m", "mft_recipes", "render", RECIPE_OF[version], f"base_model={base}",
         f"dataset={data}", "device=cpu", "sequence_len=512", "val_set_size=0", f"output_dir={folder / 'out'}"],
        capture_output=True, text=True, check=True, cwd=REPO,
    )  # fmt: skip
    config = configure(yaml.safe_load(rendered.stdout), mechanism, version, base)
    (folder / "config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    axolotl = Path(sys.executable).parent / "axolotl"
    done = subprocess.run(
        [str(axolotl), "preprocess", "config.yml"], capture_output=True, text=True, cwd=folder
    )
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
        return 0, 0, 0, len(examples)
    [prepared] = [path for path in (folder / "last_run_prepared").iterdir() if path.is_dir()]
    rows = list(load_from_disk(str(prepared)))
    by_tokens = {tuple(reference_tokens(version, example)): example for example in examples}
    tokens_equal = labels_right = 0
    for row in rows:
        example = by_tokens.get(tuple(row["input_ids"]))
        if example is None:
            continue
        tokens_equal += 1
        spans = [decode(version, row["input_ids"][a:b]) for a, b in trained_spans(row["labels"])]
        labels_right += spans == expected_trained_texts(version, example)
    return len(rows), tokens_equal, labels_right, len(examples)


def main() -> None:
    import axolotl

    print(f"axolotl {axolotl.__version__}")
    print("| tokenizer | mechanism | rows | tokens = mistral-common | labels right | examples |")
    print("|---|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="chat-formats-") as work:
        for version in ("v3", "v1"):
            for mechanism in MECHANISMS:
                rows, tokens, labels, examples = measure(version, mechanism, Path(work))
                print(f"| {version} | {mechanism} | {rows} | {tokens} | {labels} | {examples} |", flush=True)


if __name__ == "__main__":
    main()
