"""Check 1: every axolotl recipe, rendered with defaults and with overrides, is accepted by the installed
axolotl's own validation (with the capabilities of the GPUs the recipe names) and normalization (with the
model's published config.json, no hub), and uses only keys axolotl knows; the committed schema is the one
the pinned axolotl generates."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mft_recipes_axolotl import deep

from mft_recipes.schemas import check_against_schema
from tests.truth.cases import REPO, VARIANTS, axolotl_recipes, overrides_for, published_config, render

pytestmark = [pytest.mark.axolotl, pytest.mark.usefixtures("axolotl_installed")]

RECIPES = {recipe.name: recipe for recipe in axolotl_recipes()}


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("name", list(RECIPES))
def test_axolotl_accepts_the_rendered_recipe(name: str, variant: str) -> None:
    recipe = RECIPES[name]
    document = render(recipe, overrides_for(recipe, variant))
    config = deep.axolotl_config(
        document, published_config(recipe.model), gpus=recipe.hardware.gpus, gpu=recipe.hardware.gpu
    )
    # What the recipe means is what axolotl will do: bf16 on bf16 GPUs, the architecture it names.
    assert config.bf16 is True and config.torch_dtype is not None and "bfloat16" in str(config.torch_dtype)
    assert config.model_config_type == ("mixtral" if "Mixtral" in recipe.model else "mistral")
    assert config.micro_batch_size == document["micro_batch_size"]
    assert config.gradient_accumulation_steps == document["gradient_accumulation_steps"]
    if document.get("adapter"):
        assert config.adapter == document["adapter"] and config.lora_r == document["lora_r"]
    if document.get("model_config"):
        assert dict(config.overrides_of_model_config) == document["model_config"]
    if recipe.hardware.gpus > 1:
        assert config.world_size == recipe.hardware.gpus and config.ddp is True


@pytest.mark.parametrize("name", list(RECIPES))
def test_every_key_is_one_axolotl_knows(name: str) -> None:
    recipe = RECIPES[name]
    document = render(recipe, overrides_for(recipe, "defaults"))
    assert [str(problem) for problem in deep.key_problems(document) if problem.is_error] == []


@pytest.mark.parametrize("name", list(RECIPES))
def test_no_key_is_deprecated(name: str) -> None:
    recipe = RECIPES[name]
    document = render(recipe, overrides_for(recipe, "defaults"))
    assert [str(problem) for problem in deep.key_problems(document)] == []


def test_a_typo_is_caught_by_the_key_check_and_by_the_committed_schema() -> None:
    """axolotl itself accepts the typo and trains with the default dropout: both checks must not."""
    recipe = RECIPES["mistral-7b-lora"]
    document = render(recipe, overrides_for(recipe, "defaults"))
    document["lora_dropuot"] = 0.2
    document["datasets"][0]["feild_messages"] = "conversations"
    deep.axolotl_config(document, published_config(recipe.model))  # axolotl says nothing
    found = {problem.path for problem in deep.key_problems(document) if problem.code == "axolotl-unknown-key"}
    assert found == {("lora_dropuot",), ("datasets", 0, "feild_messages")}
    schema_paths = {problem.path for problem in check_against_schema(document, "axolotl")}
    assert ("lora_dropuot",) in schema_paths
    assert any(path[:1] == ("datasets",) for path in schema_paths)


def test_axolotl_refuses_qlora_without_4bit_and_the_deep_check_says_so() -> None:
    recipe = RECIPES["mistral-7b-qlora"]
    document = render(recipe, overrides_for(recipe, "defaults"))
    document["load_in_4bit"] = False
    with pytest.raises(deep.AxolotlRefused, match="load_in_4bit"):
        deep.axolotl_config(document, published_config(recipe.model))


def test_the_committed_schema_is_what_the_installed_axolotl_generates() -> None:
    """Fails when schemas/axolotl.schema.json drifts from the pinned axolotl: regenerate it with the script."""
    script = REPO / "scripts" / "generate_axolotl_schema.py"
    result = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


V100_TABLE = """\
gpus:
  v100-32gb:
    memory_gib: 32
    bf16_tflops: 125
    compute_capability: "7.0"
    usd_per_hour: 1.0
"""


def test_bf16_auto_on_a_gpu_without_bf16_is_what_axolotls_own_probe_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """deep resolves `bf16: auto` for the target GPU before normalize_config. Where the target has no bf16
    (a V100, compute capability 7.0), the answer must be axolotl's own: this machine has no GPU, so its
    probe says no bf16 too, and normalize_config given `bf16: auto` resolves it itself."""
    from axolotl.utils.config import normalize_config

    table = tmp_path / "gpus.yaml"
    table.write_text(V100_TABLE, encoding="utf-8")
    monkeypatch.setenv("MFT_RECIPES_GPU_TABLE", str(table))
    recipe = RECIPES["mistral-7b-lora"]
    document = render(recipe, overrides_for(recipe, "defaults"))
    assert document["bf16"] == "auto"
    ours = deep.axolotl_config(document, published_config(recipe.model), gpu="v100-32gb")
    probed = deep.validated_config(document, gpu="v100-32gb", model_config_dir=published_config(recipe.model))
    assert probed.bf16 == "auto"
    normalize_config(probed)  # axolotl's resolve_dtype asks this machine: no GPU, so no bf16
    assert (ours.bf16, ours.fp16, ours.torch_dtype) == (probed.bf16, probed.fp16, probed.torch_dtype)
    assert (ours.bf16, ours.fp16) == (False, True)


def test_the_environment_is_restored_after_axolotl_ran(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.delenv("DO_NOT_TRACK", raising=False)
    recipe = RECIPES["mistral-7b-full"]
    document = render(recipe, overrides_for(recipe, "defaults"))
    config = deep.axolotl_config(document, published_config(recipe.model), gpus=8, gpu="h100-80gb")
    assert config.world_size == 8  # what axolotl read while normalizing
    assert os.environ["WORLD_SIZE"] == "3" and "DO_NOT_TRACK" not in os.environ
