"""`mft-recipes plan` as users call it: every built-in recipe planned and fitting its own hardware, JSON
that matches schemas/plan.schema.json, time/cost/fees/serving against hand-worked figures, the GPU table
override, `--data`, and the short plan in `list`/`show` and the warning in `render`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from mft_recipes_plan.command import plan_command

from mft_recipes import cli as cli_module
from mft_recipes.host import get_registry
from mft_recipes.schemas import check_against_schema
from tests.refusals import assert_refused

BUILT_IN = sorted(name for name, recipe in get_registry().recipes.items() if recipe.plugin == "catalogue")


def plan(*args: str) -> Result:
    return CliRunner().invoke(plan_command, list(args))


def plan_json(*args: str) -> dict:
    result = plan(*args, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert check_against_schema(data, "plan") == []
    return data


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_built_in_recipe_is_planned_and_fits_its_hardware(name: str) -> None:
    data = plan_json(name, "--tokens", "1000000")
    recipe = get_registry().recipes[name]
    if recipe.target != "axolotl":
        assert data["platform"]["minimum_usd_per_job"] == 4.0 and data["memory_per_gpu_gib"] is None
        return
    assert data["gpu"]["name"] == recipe.hardware.gpu and data["gpus"] == recipe.hardware.gpus
    assert data["memory_per_gpu_gib"] == pytest.approx(sum(data["memory_breakdown_gib"].values()), abs=0.01)
    assert data["fits"] is True, (
        f"{name} needs {data['memory_per_gpu_gib']} GiB of {data['gpu']['memory_gib']}"
    )
    assert data["time_hours"] > 0 and data["cost_usd"] > 0


# tests/plan/test_counts.py's figures (worked out from config.json, measured by peft on the meta device in
# the axolotl tier): r=16 on attention + MLP (or experts as peft converts w1,w2,w3); LoRA parameters scale
# with the rank, so r=32 doubles them.
RECIPE_COUNTS = {
    "mistral-7b-qlora": (7_248_023_552, 2 * 41_943_040),
    "mistral-7b-lora": (7_248_023_552, 2 * 41_943_040),
    "mistral-7b-full": (7_248_023_552, 7_248_023_552),
    "mixtral-moe": (46_702_792_704, 357_564_416),
    "mixtral-8x22b": (140_630_071_296, 754_188_288),
    "mixtral-8x22b-full": (140_630_071_296, 140_630_071_296),
}


@pytest.mark.parametrize("name", sorted(RECIPE_COUNTS))
def test_built_in_recipes_count_what_they_train(name: str) -> None:
    data = plan_json(name)
    assert (data["total_params"], data["trainable_params"]) == RECIPE_COUNTS[name]
    assert data["time_hours"] is None and data["cost_usd"] is None  # no --tokens, no time


def test_time_and_cost_by_hand() -> None:
    data = plan_json(
        "mistral-7b-lora", "--tokens", "1000000", "--mfu", "0.5", "--gpu", "a100-80gb", "--gpus", "2"
    )
    tokens = 1_000_000 * (1 - 0.02) * 2  # val_set_size 0.02, 2 epochs (the recipe's defaults)
    assert data["training_tokens"] == tokens
    # LoRA with checkpointing: forward, backward to the inputs, recompute = 3 passes × 2 FLOPs per active
    # weight (7,113,805,824 without the embedding lookup); attention 2·32 layers·4096·8192 per pass, 4
    # passes; adapters (83,886,080 at r=32) 2·4 FLOPs each.
    flops = 6 * 7_113_805_824 + 4 * 2 * 32 * 4096 * 8192 + 8 * 83_886_080
    assert data["flops_per_token"] == flops
    hours = tokens * flops / (2 * 312e12 * 0.5) / 3600
    assert data["time_hours"] == pytest.approx(hours, abs=1e-3)
    assert data["cost_usd"] == pytest.approx(hours * 2 * 1.79, abs=0.01)


def test_platform_fees() -> None:
    data = plan_json("platform-mistral-7b", "--tokens", "5000000", "--platform-price-per-mtoken", "1.5")
    assert data["cost_usd"] == 7.5 and data["platform"]["storage_usd_per_month"] == 2.0
    assert (
        plan_json("platform-mistral-7b", "--tokens", "1000", "--platform-price-per-mtoken", "1.5")["cost_usd"]
        == 4.0
    )


def test_serving_cost_by_hand() -> None:
    data = plan_json(
        "mistral-7b-qlora",
        "--requests-per-month",
        "500000",
        "--tokens-per-request",
        "1000",
        "--api-price-per-mtoken",
        "0.25",
        "--serve-gpu",
        "l4-24gb",
        "--serve-tokens-per-second",
        "1000",
    )
    serving = data["serving"]
    # 5e8 tokens/month is 190 tokens/s on average: one L4 (13.5 GiB of weights fit) at $0.71 for 730 h.
    assert serving["gpus"] == 1
    assert serving["self_hosted_usd_per_month"] == pytest.approx(0.71 * 730)
    # 5e8 tokens at $0.25/M, and La Plateforme's $2 a month to keep the fine-tuned model.
    assert serving["api_usd_per_month"] == pytest.approx(127.0)
    assert serving["self_hosted_vs_api"] == pytest.approx(0.71 * 730 / 127 - 1, abs=1e-4)
    # The API bills $0.00025 a request: the L4's $518.30 a month, less the $2 of storage self-hosting
    # saves, buys 2,065,200 requests, within the 2,628,000 the L4 serves at 1,000 tokens/s.
    assert serving["break_even_requests_per_month"] == 2_065_200
    assert serving["replica_requests_per_month"] == 2_628_000


def test_no_break_even_when_one_replica_cannot_serve_the_load_it_would_take() -> None:
    """At 100 tokens/s an L4 serves 262,800 requests of 1,000 tokens a month, for which the API charges
    $67.70: below the L4's $518.30, and every further L4 adds as much cost as load."""
    options = ["--requests-per-month", "100000", "--api-price-per-mtoken", "0.25", "--serve-gpu", "l4-24gb"]
    options += ["--serve-tokens-per-second", "100", "--api-storage-per-month", "0"]
    serving = plan_json("mistral-7b-qlora", *options)["serving"]
    assert serving["api_usd_per_month"] == pytest.approx(25.0)
    assert serving["break_even_requests_per_month"] is None
    result = plan("mistral-7b-qlora", *options)
    assert "break-even: none" in result.output


def test_a_gpu_table_file_overrides_and_adds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = tmp_path / "gpus.yaml"
    table.write_text(
        "gpus:\n  l4-24gb: {memory_gib: 10, bf16_tflops: 100, usd_per_hour: 0.5}\n"
        "  my-card: {memory_gib: 200, bf16_tflops: 1000, usd_per_hour: 9}\n"
    )
    assert plan_json("mistral-7b-qlora", "--gpu-table", str(table))["fits"] is False
    monkeypatch.setenv("MFT_RECIPES_GPU_TABLE", str(table))
    assert plan_json("mixtral-moe", "--gpu", "my-card")["gpu"]["memory_gib"] == 200


def test_the_gpu_table_prints_as_a_table_file(tmp_path: Path) -> None:
    result = plan("mistral-7b-qlora", "--gpu", "list", "--json")
    table = json.loads(result.stdout)
    assert check_against_schema(table, "gpu-table") == []
    assert table["gpus"]["h100-80gb"]["bf16_tflops"] == 989
    assert table["gpus"]["h100-80gb"]["compute_capability"] == "9.0"  # what validate --deep --gpu reads
    saved = tmp_path / "mine.json"
    saved.write_text(json.dumps({"gpus": {"h100-80gb": {**table["gpus"]["h100-80gb"], "usd_per_hour": 1.0}}}))
    assert plan_json("mistral-7b-lora", "--gpu-table", str(saved))["gpu"]["usd_per_hour"] == 1.0


def test_errors_name_what_is_wrong(tmp_path: Path) -> None:
    result = plan("mistral-7b-qlora", "--gpu", "b200")
    assert result.exit_code == 2 and "unknown GPU 'b200'; known: a100-40gb" in result.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("gpus:\n  x: {memory_gib: lots, bf16_tflops: 1, usd_per_hour: 1}\n")
    result = plan("mistral-7b-qlora", "--gpu-table", str(bad))
    assert_refused(result, 1, f"{bad}: gpus.x.memory_gib: expected a positive number, got 'lots'")
    bad.write_text(
        'gpus:\n  x: {memory_gib: 1, bf16_tflops: 1, usd_per_hour: 1, compute_capability: "sm_90"}\n'
    )
    result = plan("mistral-7b-qlora", "--gpu-table", str(bad))
    assert_refused(
        result, 1, 'gpus.x.compute_capability: expected "major.minor" such as "9.0", got \'sm_90\''
    )
    data_file = tmp_path / "t.jsonl"
    data_file.write_text("")
    result = plan("mistral-7b-qlora", "--tokens", "5", "--data", str(data_file))
    assert result.exit_code == 2 and "give --tokens N or --data FILE, not both" in result.stderr
    result = plan("mistral-7b-qlora", "lora_r=0")
    assert result.exit_code == 2 and "lora_r=0" in result.stderr


@pytest.mark.parametrize(
    "words, tokens",
    [("20000000", 20_000_000), ("2e7", 20_000_000), ("2E7", 20_000_000), ("20M", 20_000_000),
     ("20_000_000", 20_000_000), ("1.5B", 1_500_000_000), ("500k", 500_000), ("2.5e3", 2_500)],
)  # fmt: skip
def test_tokens_are_read_as_people_write_them(words: str, tokens: int) -> None:
    data = plan_json("mistral-7b-lora", "--tokens", words)
    assert data["training_tokens"] == round(tokens * (1 - 0.02) * 2), "val_set_size 0.02, 2 epochs"


@pytest.mark.parametrize("words", ["abc", "20X", "1.5", "0", "-5", "2e-3", "nan", "inf", "M", ""])
def test_tokens_that_are_not_a_whole_count_are_a_usage_error(words: str) -> None:
    assert_refused(plan("mistral-7b-lora", "--tokens", words), 2, "--tokens", repr(words), "20M")


def test_check_exits_1_when_the_plan_does_not_fit() -> None:
    fits = plan("mixtral-8x22b", "--check")
    assert fits.exit_code == 0 and "fits" in fits.stdout
    too_big = plan("mixtral-8x22b", "--gpus", "4", "--check")
    assert_refused(
        too_big, 1, "mixtral-8x22b does not fit: needs 91.7 GiB per GPU, 4× h100-80gb has 79.65 GiB"
    )
    assert "does NOT fit" in too_big.stdout, "the plan is printed, then the verdict"
    as_json = plan("mixtral-8x22b", "--gpus", "4", "--check", "--json")
    assert as_json.exit_code == 1 and json.loads(as_json.stdout)["fits"] is False
    hosted = plan("platform-mistral-7b", "--check")
    assert hosted.exit_code == 0, "a hosted recipe has no memory to fit"


@pytest.fixture
def tiny_mistral(tmp_path: Path) -> Path:
    """A model folder holding only a transformers config.json: what a CPU smoke test trains."""
    folder = tmp_path / "tiny-mistral"
    folder.mkdir()
    config = {
        "model_type": "mistral", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 32768,
    }  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_a_cpu_run_is_planned_in_ram_not_on_the_recipe_gpus(tiny_mistral: Path) -> None:
    words = ("mistral-7b-lora", "device=cpu", f"base_model={tiny_mistral}")
    text = plan(*words)
    assert text.exit_code == 0, text.output
    assert "CPU run (device=cpu), no GPU: RAM" in text.stdout and "this machine has: fits" in text.stdout
    assert "h100" not in text.stdout and "per GPU" not in text.stdout
    data = plan_json(*words, "--tokens", "1M")
    assert (data["gpu"], data["gpus"], data["memory_per_gpu_gib"], data["time_hours"]) == (
        None,
        0,
        None,
        None,
    )
    run = data["cpu_run"]
    assert run["processes"] == 1 and data["fits"] is True
    assert run["ram_needed_gib"] == pytest.approx(sum(data["memory_breakdown_gib"].values()), abs=0.01)
    assert "weights fp32" in data["memory_breakdown_gib"], "the CPU profile trains in float32"
    meminfo = Path("/proc/meminfo").read_text().split()
    assert run["ram_gib"] <= int(meminfo[meminfo.index("MemTotal:") + 1]) / 2**20 + 0.01
    assert data["headroom_gib"] == pytest.approx(run["ram_gib"] - run["ram_needed_gib"], abs=0.01)


def test_a_cpu_run_that_needs_more_ram_than_the_machine_has_fails_the_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The machine's RAM is set to 64 GiB (a stand-in: the test must not depend on this machine's)."""
    from mft_recipes_plan import plan as plan_module

    monkeypatch.setattr(plan_module, "machine_ram_gib", lambda: 64.0)
    data = plan_json("mistral-7b-full", "device=cpu")
    run = data["cpu_run"]
    assert run["processes"] == 8, "one process per rank the launch starts"
    needed = 8 * sum(data["memory_breakdown_gib"].values()) + data["cpu_offload_gib"]
    assert run["ram_needed_gib"] == pytest.approx(needed, abs=0.01) and data["fits"] is False
    result = plan("mistral-7b-full", "device=cpu", "--check")
    assert_refused(result, 1, f"needs {run['ram_needed_gib']:.1f} GiB of RAM, this machine has 64.0 GiB")


def test_a_cpu_run_refuses_a_gpu() -> None:
    assert_refused(
        plan("mixtral-moe", "device=cpu", "--gpu", "a100-80gb"), 2, "device=cpu", "--gpu a100-80gb"
    )


def question(number: int, answer: str | None = None) -> dict:
    return {
        "messages": [
            {"role": "user", "content": f"Question {number}?"},
            {"role": "assistant", "content": answer or f"Answer number {number}."},
        ]
    }


def test_data_tokens_are_those_axolotl_trains_on(tmp_path: Path) -> None:
    """mistral-7b-qlora drops an example over its sequence_len of 4096 (excess_length_strategy drop):
    one long example must not count, however long it is. The tokens of the others are counted by
    mistral-common's own encode_chat_completion, apart from the data checker."""
    pytest.importorskip("mistral_common")
    from tests.data.test_tokens import reference_count

    short = [question(number) for number in range(20)]
    long = question(20, "word " * 20_000)
    data_file = tmp_path / "train.jsonl"
    data_file.write_text("".join(json.dumps(line) + "\n" for line in [*short, long]))
    trained = sum(reference_count("v3", example) for example in short)
    assert reference_count("v3", long) > 4096
    result = plan("mistral-7b-qlora", "--data", str(data_file), "--json")
    assert result.exit_code == 0, result.output
    expected = plan_json("mistral-7b-qlora", "--tokens", str(trained))["training_tokens"]
    assert json.loads(result.stdout)["training_tokens"] == expected
    assert f"planning with the {trained:,} tokens axolotl trains on" in result.stderr
    assert "1 over sequence_len" in result.stderr


def test_data_where_nothing_would_train_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("mistral_common")
    data_file = tmp_path / "train.jsonl"
    data_file.write_text(json.dumps(question(1, "word " * 5000)) + "\n")
    result = plan("mistral-7b-qlora", "--data", str(data_file))
    assert_refused(result, 1, "--data:", "no example would train", "over sequence_len 4096", "data check")


# The first bytes of each format, from its specification.
MAGIC = {
    "png": b"\x89PNG\r\n",
    "jpg": b"\xff\xd8\xff",
    "JPEG": b"\xff\xd8\xff",
    "pdf": b"%PDF-",
    "svg": b"<?xml",
}


@pytest.mark.parametrize("extension", MAGIC)
def test_plot_draws_the_breakdown_in_the_format_its_extension_names(tmp_path: Path, extension: str) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / f"plan.{extension}"
    result = plan("mixtral-moe", "--plot", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(MAGIC[extension])


@pytest.mark.parametrize(
    "name, message",
    [
        ("plan.xyz", "matplotlib writes no .xyz images"),
        ("plan", "no extension tells the format"),
    ],
)
def test_plot_refuses_a_name_whose_format_it_cannot_tell(tmp_path: Path, name: str, message: str) -> None:
    pytest.importorskip("matplotlib")
    result = plan("mixtral-moe", "--plot", str(tmp_path / name))
    assert_refused(result, 2, f"--plot {tmp_path / name}: {message}", ".png", ".svg")
    assert result.stdout == "" and list(tmp_path.iterdir()) == []


def test_list_and_show_carry_the_short_plan() -> None:
    result = CliRunner().invoke(cli_module.cli, ["list", "--json"])
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["mistral-7b-qlora"]["facts"] == {
        "trainable": "83.9M (1.16%)",
        "memory/GPU": rows["mistral-7b-qlora"]["facts"]["memory/GPU"],
        "fits": rows["mistral-7b-qlora"]["facts"]["fits"],
    }
    assert rows["mistral-7b-qlora"]["facts"]["fits"].startswith("yes")
    assert rows["platform-mistral-7b"]["facts"]["memory/GPU"] == "hosted"
    shown = CliRunner().invoke(cli_module.cli, ["show", "mixtral-moe"])
    assert "plan: trainable 357.6M (0.77%)" in shown.stdout


def test_render_warns_when_the_document_does_not_fit_its_recipe_hardware() -> None:
    fits = CliRunner().invoke(cli_module.cli, ["render", "mistral-7b-qlora", "dataset=t.jsonl"])
    assert fits.exit_code == 0 and "plan:" not in fits.stderr
    too_big = CliRunner().invoke(
        cli_module.cli,
        ["render", "mistral-7b-qlora", "dataset=t.jsonl", "micro_batch_size=16", "sequence_len=8192"],
    )
    assert too_big.exit_code == 0, "a warning, not a refusal: the user may know better"
    assert (
        "mft-recipes: warning: plan: needs" in too_big.stderr and "1× l4-24gb has 22.49 GiB" in too_big.stderr
    )
    on_cpu = CliRunner().invoke(
        cli_module.cli,
        [
            "render",
            "mistral-7b-qlora",
            "dataset=t.jsonl",
            "micro_batch_size=16",
            "sequence_len=8192",
            "device=cpu",
        ],
    )
    assert on_cpu.exit_code == 0 and "plan:" not in on_cpu.stderr, "a CPU smoke test is not planned for GPUs"


def test_plan_imports_nothing_heavy() -> None:
    code = (
        "import sys; from mft_recipes.cli import recipe_facts; from mft_recipes.host import get_registry; "
        "[recipe_facts(recipe) for recipe in get_registry().recipes.values()]; "
        "heavy = {'torch', 'transformers', 'peft', 'axolotl', 'vllm', 'matplotlib'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        == "[]\n"
    )
