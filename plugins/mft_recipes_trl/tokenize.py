"""`mft-recipes trl tokenize`: chat data as the tokens TRL trains on, in Mistral's exact format.

TRL formats a conversation through the tokenizer's chat template and tokenizes the text with the Hugging
Face tokenizer, and `assistant_only_loss` finds the answers through `{% generation %}` markers in that
template. Neither meets Mistral's format exactly: published base models ship no template, and a Hugging
Face tokenizer cuts runs of spaces and literal control strings differently from mistral-common
(docs/chat-format.md and docs/trl.md measure it). So the data goes to TRL already tokenized, the way
TRL takes it: a row with `input_ids` is not formatted again, and its `assistant_masks` decide the labels
(trl/trainer/sft_trainer.py, `_prepare_dataset`: a token trains where its mask is 1).

Each conversation is encoded with mistral-common for the recipe's model (mft_recipes_catalogue's
MistralChat, the encoding axolotl's dataset types and `data check` use): the tokens of
`encode_chat_completion`, and a mask of 1 on every token of each assistant message and its EOS, unless the
message has `weight: 0`. Examples longer than the recipe's sequence length are dropped, as the axolotl
recipes drop them (TRL would cut them), and so are examples with no trained token.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import click

from mft_recipes import (
    EXIT_INVALID,
    InputFile,
    ParameterError,
    RenderError,
    fail,
    get_architectures,
    parse_overrides,
    plural,
    print_json,
    recipe_or_fail,
    render_document,
    why_unwritable,
    why_write_failed,
    write_text_atomic,
)

# Problems listed in full; the rest are counted.
LISTED_PROBLEMS = 20


@dataclass
class TokenizeReport:
    """What `trl tokenize` did (schemas/trl-tokenize.schema.json)."""

    input: str
    output: str | None
    recipe: str
    tokenizer: str
    sequence_len: int
    examples: int = 0
    written: int = 0
    over_sequence_len: int = 0
    without_trained_tokens: int = 0
    tokens: int = 0
    trained_tokens: int = 0
    invalid: int = 0
    problems: list[str] = field(default_factory=list)


def tokenizer_and_length(recipe_name: str, overrides: dict[str, Any]) -> tuple[str, int]:
    """The tokenizer version and sequence length of the recipe's TRL config (its model_name_or_path's
    architecture, else the recipe's own)."""
    recipe = recipe_or_fail(recipe_name)
    rendered = render_document(recipe, overrides, placeholders=True, target="trl")
    document = rendered.document
    architectures = get_architectures()
    found = architectures.find(str(document.get("model_name_or_path", "")))
    return (found or architectures[recipe.model]).tokenizer, int(document["max_length"])


def tokenize_file(path: str, version: str, sequence_len: int, report: TokenizeReport) -> list[str]:
    """The JSONL rows of the examples that train, with every problem and drop counted in `report`."""
    from mft_recipes_catalogue.chat_format import MistralChat

    chat = MistralChat(version)
    rows: list[str] = []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            report.examples += 1
            try:
                encoded = chat.encode(json.loads(line))
            except Exception as error:  # mistral-common's own errors, JSON, a missing key
                report.invalid += 1
                if len(report.problems) < LISTED_PROBLEMS:
                    report.problems.append(f"{path}:{number}: {type(error).__name__}: {error}")
                continue
            mask = [int(label != -100) for label in encoded.labels]
            if len(encoded.tokens) > sequence_len:
                report.over_sequence_len += 1
            elif not any(mask):
                report.without_trained_tokens += 1
            else:
                rows.append(
                    json.dumps({"input_ids": encoded.tokens, "assistant_masks": mask, "tokenizer": version})
                )
                report.tokens += len(encoded.tokens)
                report.trained_tokens += sum(mask)
    report.written = len(rows)
    return rows


@click.group("trl")
def trl_group() -> None:
    """TRL: data in Mistral's exact chat format for the configs `render --target trl` writes."""


@trl_group.command("tokenize")
@click.argument("chat_file", metavar="CHAT.jsonl", type=InputFile())
@click.option(
    "--recipe", required=True, help="The recipe whose model and sequence length the tokens are for."
)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a recipe parameter.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The JSONL to write.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (schemas/trl-tokenize.schema.json).")
def tokenize(chat_file: str, recipe: str, overrides: tuple[str, ...], output: str, as_json: bool) -> None:
    """Write CHAT.jsonl (La Plateforme's chat format) as the tokens and assistant masks TRL trains on:
    mistral-common's exact encoding for the recipe's model. Exit 1, writing nothing, when an example
    cannot be encoded (`mft-recipes data check` says why, line by line)."""
    if reason := why_unwritable(output):
        fail(f"-o {output}: cannot write it: {reason}")
    try:
        version, sequence_len = tokenizer_and_length(recipe, parse_overrides(overrides))
    except (ParameterError, RenderError) as error:
        fail(str(error))
    report = TokenizeReport(chat_file, None, recipe, version, sequence_len)
    try:
        rows = tokenize_file(chat_file, version, sequence_len, report)
    except UnicodeDecodeError as error:
        fail(f"{chat_file}: not UTF-8 text: {error}", EXIT_INVALID)
    if not report.invalid and rows:
        try:
            write_text_atomic(output, "".join(row + "\n" for row in rows))
        except OSError as error:
            fail(f"-o {output}: {why_write_failed(output, error)}")
        report.output = output
    if as_json:
        print_json(asdict(report))
    else:
        _print(report)
    if report.invalid or not rows:
        raise SystemExit(EXIT_INVALID)


def _print(report: TokenizeReport) -> None:
    for problem in report.problems:
        click.echo(f"{problem}", err=True)
    dropped = [
        f"{plural(count, 'example')} {why}"
        for count, why in (
            (report.over_sequence_len, f"over sequence_len {report.sequence_len}"),
            (report.without_trained_tokens, "with no trained token"),
        )
        if count
    ]
    click.echo(
        f"{report.input}: {plural(report.examples, 'example')}, Mistral's {report.tokenizer} tokenizer; "
        + (f"dropped {' and '.join(dropped)}; " if dropped else "")
        + f"{report.written:,} written, {report.tokens:,} tokens, {report.trained_tokens:,} trained"
    )
    if report.invalid:
        click.echo(
            f"mft-recipes: error: {plural(report.invalid, 'example')} cannot be encoded; nothing written "
            f"(`mft-recipes data check {report.input} --recipe {report.recipe}` lists every problem)",
            err=True,
        )
    elif report.output:
        click.echo(f"wrote {report.output}", err=True)
    else:
        click.echo("mft-recipes: error: no example trains; nothing written", err=True)
