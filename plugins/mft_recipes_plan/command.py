"""`mft-recipes plan RECIPE [key=value ...]`: the plan as a table, as JSON, or as a picture."""

from __future__ import annotations

import io
from decimal import Decimal, InvalidOperation
from typing import Any

import click

from mft_recipes import InputFile
from mft_recipes_plan.plan import (
    PLATFORM_STORAGE_USD_PER_MONTH,
    Plan,
    PlanError,
    PlanOptions,
    ServingQuestion,
    plan_rendered,
)

# The suffixes a token count may carry: thousand, million, billion.
TOKEN_SCALES = {"k": 10**3, "K": 10**3, "M": 10**6, "B": 10**9}


class TokenCount(click.ParamType):
    """A number of tokens as people write it: 20000000, 20_000_000, 2e7, 20M, 1.5B, 500k."""

    name = "N"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip()
        scale = TOKEN_SCALES.get(text[-1:], 1)
        try:
            number = Decimal(text[:-1] if scale > 1 else text) * scale
        except InvalidOperation:
            number = Decimal("NaN")
        if not number.is_finite() or number != number.to_integral_value() or number < 1:
            self.fail(
                f"{value!r} is not a whole number of tokens (20000000, 2e7, 20M, 1.5B, 500k)", param, ctx
            )
        return int(number)


@click.command("plan", context_settings={"ignore_unknown_options": True})
@click.argument("recipe_name", metavar="RECIPE")
@click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")
@click.option(
    "--gpu",
    help="GPU from the table (default: the recipe's); `--gpu list` prints the table "
    "(with --json: schemas/gpu-table.schema.json).",
)
@click.option(
    "--gpus",
    type=click.IntRange(min=1),
    help="GPUs in all (default: the recipe's); alone, on one machine (a multi-node recipe: its GPUs per node).",
)
@click.option("--nodes", type=click.IntRange(min=1), help="Machines (default: the recipe's).")
@click.option(
    "--gpus-per-node", type=click.IntRange(min=1), help="GPUs on each machine (default: the recipe's)."
)
@click.option(
    "--interconnect-gbps",
    type=click.FloatRange(min=0, min_open=True),
    help="Network between machines per GPU, Gbit/s (default: the GPU table's): ZeRO-3's traffic is timed on it.",
)
@click.option(
    "--tokens", type=TokenCount(), help="Tokens in the training data, one pass (20000000, 2e7, 20M, 1.5B)."
)
@click.option(
    "--data",
    "data_files",
    multiple=True,
    type=InputFile(),
    help="Training JSONL FILE: its tokens are counted exactly with the data checker (repeatable).",
)
@click.option(
    "--mfu",
    type=click.FloatRange(0, 1, min_open=True),
    help="Share of the BF16 peak a step sustains (default: an assumption per method, printed).",
)
@click.option(
    "--gpu-table",
    type=InputFile(),
    help="YAML/JSON GPU table replacing or adding entries (also $MFT_RECIPES_GPU_TABLE).",
)
@click.option(
    "--platform-price-per-mtoken",
    "platform_usd_per_mtoken",
    type=click.FloatRange(min=0),
    help="La Plateforme training price in USD per million tokens (none is published).",
)
@click.option("--requests-per-month", type=click.IntRange(min=1), help="Serving: requests per month.")
@click.option(
    "--tokens-per-request",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Serving: prompt + completion tokens per request.",
)
@click.option(
    "--api-price-per-mtoken",
    "api_usd_per_mtoken",
    type=click.FloatRange(min=0),
    help="Serving: API price, USD per M tokens.",
)
@click.option(
    "--api-storage-per-month",
    "api_storage_usd_per_month",
    type=click.FloatRange(min=0),
    default=PLATFORM_STORAGE_USD_PER_MONTH,
    show_default=True,
    help="Serving: the API's monthly fee for keeping the fine-tuned model, USD (La Plateforme's).",
)
@click.option("--serve-gpu", help="Serving: GPU for vLLM (default: the plan's GPU).")
@click.option(
    "--serve-tokens-per-second",
    type=click.FloatRange(min=0, min_open=True),
    help="Serving: measured tokens/s per GPU (default: derived from the BF16 peak, printed).",
)
@click.option(
    "--target",
    "target_name",
    metavar="NAME",
    help="Plan the recipe as rendered for this target (default: its own; `render --target`).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (schemas/plan.schema.json).")
@click.option("--check", is_flag=True, help="Exit 1 when the plan does not fit (for CI).")
@click.option(
    "--plot",
    type=click.Path(dir_okay=False),
    help="Draw the memory breakdown to FILE, in the format its extension names: .png, .svg, .pdf, .jpg, "
    "... (needs [plot]).",
)
def plan_command(
    recipe_name: str,
    overrides: tuple[str, ...],
    data_files: tuple[str, ...],
    as_json: bool,
    check: bool,
    plot: str | None,
    target_name: str | None,
    **options: Any,
) -> None:
    """Plan RECIPE before renting hardware: parameters, memory per GPU, whether it fits, time, cost.

    \b
    mft-recipes plan mistral-7b-qlora
    mft-recipes plan mixtral-moe --gpu a100-80gb --tokens 20M
    mft-recipes plan mixtral-8x22b --gpus 4 --check
    mft-recipes plan mixtral-8x22b --gpu a100-40gb --nodes 2 --gpus-per-node 8 --tokens 50M
    mft-recipes plan mistral-7b-qlora --target trl
    mft-recipes plan mistral-7b-lora sequence_len=4096 --data train.jsonl --json
    mft-recipes plan mistral-7b-qlora --requests-per-month 500000 --api-price-per-mtoken 0.25
    """
    from mft_recipes import (
        EXIT_INVALID,
        EXIT_USAGE,
        ParameterError,
        RenderError,
        fail,
        get_architectures,
        parse_overrides,
        print_json,
        recipe_or_fail,
        render_document,
    )
    from mft_recipes_plan.gpus import GpuTableError, InvalidGpuTable, load_gpu_table

    if options["gpu"] == "list":
        try:
            table = load_gpu_table(options["gpu_table"])
        except GpuTableError as error:
            fail(str(error), EXIT_INVALID if isinstance(error, InvalidGpuTable) else EXIT_USAGE)
        _print_gpu_table(table, as_json)
        return
    recipe = recipe_or_fail(recipe_name)
    plot_format = _plot_format(plot) if plot else None
    if options["tokens"] is not None and data_files:
        fail("give --tokens N or --data FILE, not both")
    # The serving options make the serving question; the rest are named after the PlanOptions they fill.
    serving = _serving_question(options)
    try:
        parsed = parse_overrides(overrides)
        rendered = render_document(recipe, parsed, placeholders=True, target=target_name)
    except (ParameterError, RenderError) as error:
        fail(str(error))
    if data_files:
        options["tokens"] = _count_data_tokens(list(data_files), recipe.name, parsed)
    try:
        plan = plan_rendered(rendered, PlanOptions(**options, serving=serving), get_architectures())
    except InvalidGpuTable as error:
        fail(str(error), EXIT_INVALID)
    except (PlanError, GpuTableError, ValueError) as error:
        fail(str(error))
    if plot and plot_format:
        _plot(plan, plot, plot_format)
    if as_json:
        print_json(plan.as_json())
    else:
        _print_plan(plan)
    if check and (shortfall := plan.shortfall()):
        fail(f"{recipe.name} does not fit: {shortfall}", EXIT_INVALID)


def _serving_question(options: dict[str, Any]) -> ServingQuestion | None:
    """The serving options, taken out of `options`: the question when the load and the API price are
    both given, None when neither is; one without the other is a usage error."""
    from mft_recipes import fail

    load, price = options.pop("requests_per_month"), options.pop("api_usd_per_mtoken")
    per_request, gpu, speed, storage = (
        options.pop(name)
        for name in (
            "tokens_per_request",
            "serve_gpu",
            "serve_tokens_per_second",
            "api_storage_usd_per_month",
        )
    )
    if (load is None) != (price is None):
        fail("serving cost needs both --requests-per-month and --api-price-per-mtoken")
    return None if load is None else ServingQuestion(load, per_request, price, gpu, speed, storage)


def _count_data_tokens(paths: list[str], recipe: str, overrides: dict[str, Any]) -> int:
    """The tokens the recipe trains on in the training files, by the data checker (mistral-common's
    tokenizers) with its per-example verdict: the examples axolotl keeps, as it keeps them."""
    from mft_recipes import EXIT_INVALID, fail, plural

    try:
        from mft_recipes_data.check import CheckError, CheckOptions, check_files
    except ImportError as error:
        fail(
            f"--data needs the data checker (mft_recipes_data.check), which failed to import: {error}; "
            "count the tokens yourself and give --tokens N"
        )
        raise AssertionError from error  # fail() exits
    try:
        report = check_files(paths, CheckOptions(recipe=recipe, overrides=overrides))
    except CheckError as error:  # what data check itself calls a usage error: no mistral-common, ...
        fail(f"--data: {error}")
    except ValueError as error:
        fail(f"--data: {error}", EXIT_INVALID)
    see = f"see `mft-recipes data check {' '.join(paths)} --recipe {recipe}`"
    nothing = [str(problem) for problem in report.problems if problem.code == "E_NOTHING_TRAINS"]
    if nothing:
        fail(f"--data: {'; '.join(nothing)} ({see})", EXIT_INVALID)
    if not report.valid:
        click.echo(
            f"mft-recipes: warning: {plural(len(report.problems), 'problem')} in the data ({see}); "
            f"planning with the {report.valid_examples:,} valid examples",
            err=True,
        )
    epoch = report.epoch
    if epoch is not None and report.trained_tokens < report.total_tokens:
        click.echo(
            f"mft-recipes: warning: planning with the {report.trained_tokens:,} tokens axolotl trains on, not "
            f"the {report.total_tokens:,} of the valid examples: {epoch.over_sequence_len:,} over "
            f"sequence_len, {epoch.without_trained_tokens:,} left with no trained token ({see})",
            err=True,
        )
    return int(report.trained_tokens)


def _gib(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} GiB"


def _params(value: int | None) -> str:
    if value is None:
        return "n/a"
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= size:
            return f"{value / size:.2f}{unit} ({value:,})"
    return f"{value:,}"


def _print_plan(plan: Plan) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=True, highlight=False)
    data = plan.as_json()
    console.print(f"[bold]{plan.recipe}[/bold]: {plan.model}, {plan.method}, target {plan.target}")
    trainable = data["trainable_params"]
    share = f" ({trainable / data['total_params']:.2%})" if trainable and data["total_params"] else ""
    console.print(
        f"parameters: {_params(data['total_params'])} total, {_params(trainable)} trainable{share}",
        markup=False,
    )
    if plan.counts and plan.counts.trainable_groups:
        console.print(
            "  trains: "
            + ", ".join(f"{group} {_params(count)}" for group, count in plan.counts.trainable_groups.items()),
            markup=False,
        )
    if plan.memory is not None:
        verdict = "[green]fits[/green]" if plan.fits else "[red]does NOT fit[/red]"
        if plan.cpu_run is not None:
            run = plan.cpu_run
            console.print(
                f"CPU run (device=cpu), no GPU: RAM {_gib(plan.ram_needed_gib)} ({run.processes} × "
                f"{_gib(plan.memory.total / 2**30)} per process) of the {run.ram_gib:.1f} GiB this machine "
                f"has: {verdict}, headroom {_gib(plan.headroom_gib)}"
            )
        elif plan.gpu is not None:
            console.print(
                f"memory per GPU: {_gib(plan.memory_per_gpu_gib)} of {plan.gpu.memory_gib:g} GiB on "
                f"{plan.hardware()}: {verdict}, headroom {_gib(plan.headroom_gib)}"
                + (
                    f" (fits on {plan.nodes_needed} nodes of {plan.gpus_per_node})"
                    if not plan.fits and plan.nodes_needed
                    else ""
                )
            )
        table = Table(box=None, pad_edge=False)
        for column, justify in (("term", "left"), ("GiB", "right"), ("share", "right")):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        total = plan.memory.total
        for term, value in plan.memory.terms.items():
            table.add_row(term, f"{value / 2**30:.2f}", f"{value / total:.0%}")
        console.print(table)
        if plan.memory.cpu_bytes:
            console.print(f"offloaded to CPU memory: {plan.memory.cpu_bytes / 2**30:.1f} GiB")
    if plan.communication is not None:
        traffic = plan.communication
        console.print(
            f"between nodes: {traffic.bytes_per_step / 1e9:.1f} GB per GPU per step (ZeRO-3: "
            f"{traffic.gathers_per_micro_batch} all-gathers and a reduce-scatter × {traffic.micro_batches} micro "
            f"batches) → {traffic.seconds_per_step:.2f} s at {traffic.interconnect_gbps:g} Gb/s, against "
            f"{traffic.compute_seconds_per_step:.2f} s of compute: {traffic.bound}-bound",
            markup=False,
        )
    if plan.time_hours is not None and plan.cost_usd is not None:
        console.print(
            f"training: {plan.training_tokens:,} tokens, {plan.flops_per_token:.3g} FLOPs/token → "
            f"{plan.time_hours:.2f} h, ${plan.cost_usd:,.2f}",
            markup=False,
        )
    if plan.platform is not None:
        console.print(
            f"La Plateforme: job ${plan.platform['job_usd']:.2f} (minimum "
            f"${plan.platform['minimum_usd_per_job']:g}), storage "
            f"${plan.platform['storage_usd_per_month']:g}/month",
            markup=False,
        )
    if plan.serving is not None:
        serving = plan.serving
        change = serving["self_hosted_vs_api"]
        console.print(
            f"serving: self-hosted ${serving['self_hosted_usd_per_month']:,.2f}/month vs API "
            f"${serving['api_usd_per_month']:,.2f}/month"
            + (f" ({change:+.0%} self-hosted)" if change is not None else ""),
            markup=False,
        )
        break_even = serving["break_even_requests_per_month"]
        console.print(
            f"break-even: {break_even:,} requests/month" if break_even is not None else "break-even: none",
            markup=False,
        )
        for line in serving["assumptions"]:
            console.print(f"  - {line}", markup=False)
    if plan.assumptions:
        console.print("assumptions:")
        for label, text in plan.assumptions.items():
            console.print(f"  - {label}: {text}", markup=False)
    for note in plan.notes:
        console.print(f"note: {note}", markup=False)


def _print_gpu_table(table: dict[str, Any], as_json: bool) -> None:
    from mft_recipes import print_json

    if (
        as_json
    ):  # the shape of a --gpu-table file (schemas/gpu-table.schema.json), so it can be saved and edited
        print_json(
            {
                "gpus": {
                    gpu.name: {k: v for k, v in gpu.as_json().items() if k != "name"}
                    for gpu in table.values()
                }
            }
        )
        return
    from rich.console import Console
    from rich.table import Table

    grid = Table(box=None, pad_edge=False)
    for column in ("name", "memory GiB", "BF16 TFLOP/s", "network Gb/s", "USD/hour", "price source"):
        grid.add_column(column, overflow="fold")
    for gpu in table.values():
        network = "n/a" if gpu.interconnect_gbps is None else f"{gpu.interconnect_gbps:g}"
        grid.add_row(
            gpu.name,
            f"{gpu.memory_gib:g}",
            f"{gpu.bf16_tflops:g}",
            network,
            f"{gpu.usd_per_hour:g}",
            gpu.price_source,
        )
    Console(soft_wrap=False).print(grid)


def _plot_format(path: str) -> str:
    """The image format `--plot PATH` asks for by its extension, among those matplotlib writes; or a usage
    error (no matplotlib, an extension it does not write, a path that cannot be written), before any work."""
    from pathlib import Path

    from mft_recipes import fail, why_unwritable

    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
    except ImportError:
        fail("--plot needs matplotlib: pip install 'mft-recipes[plot]'")
    formats = FigureCanvasAgg.get_supported_filetypes()
    extension = Path(path).suffix.lower().removeprefix(".")
    if extension not in formats:
        named = f"matplotlib writes no .{extension} images" if extension else "no extension tells the format"
        fail(f"--plot {path}: {named}; name the file with one of .{', .'.join(formats)}")
    if reason := why_unwritable(path):
        fail(f"--plot {path}: cannot write it: {reason}")
    return extension


def _plot(plan: Plan, path: str, fmt: str) -> None:
    """The memory breakdown as one stacked bar against the GPU's memory, written atomically."""
    from mft_recipes import atomic_writer, fail, why_write_failed

    if plan.memory is None or plan.gpu is None:
        fail(f"--plot: recipe {plan.recipe} has no memory plan (hosted training)")
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 6))
    bottom = 0.0
    for term, value in plan.memory.gib().items():
        if value <= 0:
            continue
        axes.bar([plan.recipe], [value], bottom=bottom, label=f"{term} ({value:.1f})")
        bottom += value
    axes.axhline(
        plan.gpu.memory_gib, color="black", linestyle="--", label=f"{plan.gpu.name} ({plan.gpu.memory_gib:g})"
    )
    axes.set_ylabel("GiB per GPU")
    axes.set_title(f"{plan.recipe} on {plan.hardware()}: {'fits' if plan.fits else 'does not fit'}")
    axes.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize="small")
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, bbox_inches="tight", dpi=120)
    plt.close(figure)
    try:
        with atomic_writer(path, "wb") as file:
            file.write(buffer.getvalue())
    except OSError as error:
        fail(f"--plot {path}: {why_write_failed(path, error)}")
    click.echo(f"wrote {path}", err=True)
