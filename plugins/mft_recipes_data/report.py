"""The check report for people: problems by line on stderr, a summary per file on stdout."""

from __future__ import annotations

from collections import Counter

import click

from mft_recipes import CategoryPath, format_path, plural
from mft_recipes_data.check import CheckReport, FileReport, token_stats
from mft_recipes_data.chunks import PATH_TARGET


def print_report(report: CheckReport) -> None:
    for file_report in report.files:
        for problem in file_report.problems:
            line = f":{problem.line}" if problem.line is not None else ""  # file-level: size, empty file
            where = f"{format_path(problem.path)}: " if problem.path else ""
            click.echo(
                f"{problem.file}{line}: {problem.severity}: {where}{problem.message} [{problem.code}]",
                err=True,
            )
        if file_report.problems_omitted:
            total = sum(file_report.problem_counts.values())
            click.echo(
                f"{file_report.file}: {plural(file_report.problems_omitted, 'more problem')} not listed "
                f"(counted by code below; --max-problems {total} lists them all)",
                err=True,
            )
    for file_report in report.files:
        click.echo(_file_line(file_report))
        for target, counts in file_report.labels.items():
            if target == PATH_TARGET:
                click.echo(_leaf_line(counts))
                continue
            shown = ", ".join(f"{label} {count:,}" for label, count in counts.most_common(12))
            more = f", … ({len(counts) - 12} more)" if len(counts) > 12 else ""
            click.echo(f"  labels {target}: {plural(len(counts), 'value')}: {shown}{more}")
    stats = token_stats(report.token_counts())
    click.echo(f"tokens ({report.tokenizer.describe()}):")
    if stats["min"] is None:
        click.echo("  no valid examples")
    else:
        click.echo(
            f"  total {stats['total']:,}; per example min {stats['min']:,}, median {stats['median']:,}, "
            f"p95 {stats['p95']:,}, max {stats['max']:,}"
        )
    _print_recipe(report)
    if report.clean is not None:
        left = (
            ", ".join(f"{count:,} {code}" for code, count in report.clean.left_out.most_common()) or "nothing"
        )
        click.echo(
            f"wrote {plural(report.clean.written, 'example')} to {report.clean.output}; left out: {left}"
        )


def _leaf_line(counts: Counter) -> str:
    """A classifier's answers: leaves and the categories above them, examples per leaf, the commonest."""
    above = [
        len({CategoryPath.join(CategoryPath.split(leaf)[:level]) for leaf in counts})
        for level in range(1, max(len(CategoryPath.split(leaf)) for leaf in counts))
    ]
    stats = token_stats(counts.values())
    categories = "".join(f", {number:,} at level {level}" for level, number in enumerate(above, 1))
    common = ", ".join(f"{leaf} {count:,}" for leaf, count in counts.most_common(3))
    return (
        f"  category paths: {len(counts):,} {'leaf' if len(counts) == 1 else 'leaves'}{categories}; examples "
        f"per leaf: min {stats['min']:,}, median {stats['median']:,}, max {stats['max']:,}; commonest: {common}"
    )


def _file_line(report: FileReport) -> str:
    status = "ok" if report.valid else "INVALID"
    parts = [plural(report.examples, "example"), f"{report.valid_examples:,} valid"]
    if report.invalid_examples:
        parts.append(f"{report.invalid_examples:,} invalid")
    if report.duplicates:
        parts.append(plural(report.duplicates, "duplicate"))
    if report.blank_lines:
        parts.append(plural(report.blank_lines, "blank line"))
    codes = ", ".join(f"{code} {count:,}" for code, count in sorted(report.problem_counts.items()))
    line = f"{report.file} ({report.role}): {status}: {', '.join(parts)}"
    return line + (f"\n  problems: {codes}" if codes else "")


def _print_recipe(report: CheckReport) -> None:
    settings, epoch = report.training, report.epoch
    if settings is None or epoch is None:
        return
    click.echo(f"recipe {settings.recipe} ({settings.target}):")
    if settings.dataset_type == "chat_template":
        click.echo(
            "  note: the recipe formats conversations with the tokenizer's own chat template "
            "(chat_template=tokenizer_default); these counts are Mistral's format, which it may not match"
        )
    if settings.sequence_len is None:
        click.echo("  no sequence length set (the server's default applies)")
        return
    fate = "truncates" if settings.excess_length_strategy == "truncate" else "drops"
    click.echo(
        f"  {plural(epoch.over_sequence_len, 'training example')} over sequence_len {settings.sequence_len:,}"
        + (f" (axolotl {fate} them)" if epoch.over_sequence_len and not settings.platform else "")
    )
    if epoch.without_trained_tokens:
        click.echo(
            f"  {epoch.without_trained_tokens:,} training examples left with no trained token (every answer "
            "weight 0, or cut off): axolotl drops them (sample packing)"
        )
    if epoch.tokens_per_epoch is not None:
        held = f", after holding out val_set_size {settings.val_set_size:g}" if settings.val_set_size else ""
        click.echo(
            f"  per epoch: {plural(epoch.examples_per_epoch or 0, 'example')}, {plural(epoch.tokens_per_epoch, 'token')}{held}"
        )
    if epoch.steps_per_epoch is not None:
        packing = ", packed sequences of sequence_len: a lower bound" if settings.sample_packing else ""
        click.echo(
            f"  steps per epoch: {epoch.steps_per_epoch:,} (micro_batch_size {settings.micro_batch_size} × "
            f"gradient_accumulation_steps {settings.gradient_accumulation_steps} × {settings.gpus} GPU{packing})"
            + (
                f"; {settings.num_epochs:g} epoch{'' if settings.num_epochs == 1 else 's'} → {plural(epoch.total_steps, 'step')}"
                if epoch.total_steps
                else ""
            )
        )
