"""Measure TRL's own way to Mistral's chat format against mistral-common (docs/trl.md).

TRL formats a conversation through the tokenizer's chat template and, with `assistant_only_loss`, takes
the trained tokens from the `{% generation %}` markers of that template (transformers'
`apply_chat_template(..., return_assistant_tokens_mask=True)`). This script gives it the best template
there is, Mistral's own format (mft_recipes_catalogue.chat_format.chat_template) with the answers and
their EOS inside generation markers, on a tiny model's tokenizer (Mistral's real v1 and v3 sentencepiece
models, converted by transformers, as tests/tiny_models.py builds them), and counts, over the
conversations of tests/conversations.py without tool calls (the template refuses them), the rows whose
tokens equal mistral-common's encode_chat_completion and whose mask is the answers and their EOS.

    python scripts/compare_trl_chat_formats.py     # in the trl tier's environment (nox -s trl)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from mft_recipes_catalogue.chat_format import chat_template

from tests.conversations import conversations, decode, expected_trained_texts, reference_tokens, trained_spans
from tests.tiny_models import build_tokenizer

ANSWER = "{{- @ASSISTANT@ -}}"


def with_generation_markers(version: str) -> str:
    """Mistral's template for `version` with each answer and its EOS between generation markers."""
    template = chat_template(version)
    start = template.index("  {%- else -%}\n    {{- ")
    end = template.index("\n", start + len("  {%- else -%}\n"))
    answer = template[start + len("  {%- else -%}\n") : end]
    marked = "    {%- generation -%}" + answer.strip().replace("{{-", "{{") + "{%- endgeneration -%}"
    return template[: start + len("  {%- else -%}\n")] + marked + template[end:]


def measure(version: str) -> tuple[int, int, int]:
    with tempfile.TemporaryDirectory() as folder:
        tokenizer = build_tokenizer(Path(folder), version=version)
    template = with_generation_markers(version)
    rows = equal = labelled = 0
    for example in conversations(version):
        if example.get("tools"):
            continue
        rows += 1
        out = tokenizer.apply_chat_template(
            example["messages"],
            chat_template=template,
            tokenize=True,
            return_dict=True,
            return_assistant_tokens_mask=True,
        )
        tokens, mask = list(out["input_ids"]), list(out["assistant_masks"])
        equal += tokens == reference_tokens(version, example)
        labels = [token if bit else -100 for token, bit in zip(tokens, mask, strict=True)]
        texts = [decode(version, tokens[a:b]) for a, b in trained_spans(labels)]
        labelled += tokens == reference_tokens(version, example) and texts == expected_trained_texts(
            version, example
        )
    return rows, equal, labelled


if __name__ == "__main__":
    for version in ("v3", "v1"):
        rows, equal, labelled = measure(version)
        print(f"{version}: {rows} conversations, tokens equal {equal}, tokens and labels right {labelled}")
