"""The schema's tightenings (scripts/generate_axolotl_schema.py TIGHTENINGS) are strictness axolotl's
own model does not have: axolotl's validation and normalization let each value through, and each one
fails or trains nothing later. Each case shows axolotl's verdict and the real failure; fast `validate`
refuses all of them, naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mft_recipes_axolotl import deep

from mft_recipes.schemas import check_against_schema
from tests.axolotl_plugin.configs import mistral_lora as config
from tests.truth.cases import published_config

pytestmark = [pytest.mark.axolotl, pytest.mark.usefixtures("axolotl_installed")]

MISTRAL = published_config("Mistral-7B-v0.3")


def accepted_by_axolotl(**changes: Any) -> Any:
    return deep.axolotl_config(config(**changes), MISTRAL, gpu="h100-80gb")


def refused_key(**changes: Any) -> list[str]:
    return [
        ".".join(map(str, problem.path)) for problem in check_against_schema(config(**changes), "axolotl")
    ]


def test_a_negative_learning_rate_passes_axolotl_and_torch_refuses_it_at_the_optimizer() -> None:
    import torch

    validated = accepted_by_axolotl(learning_rate=-0.0002)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=validated.learning_rate)
    assert refused_key(learning_rate=-0.0002) == ["learning_rate"]


def test_a_learning_rate_that_is_no_number_is_refused_by_both() -> None:
    """axolotl converts a string with float() in a field validator; the schema's pattern says the same."""
    with pytest.raises(deep.AxolotlRefused, match="could not convert string to float"):
        accepted_by_axolotl(learning_rate="fast")
    assert refused_key(learning_rate="fast") == ["learning_rate"]


def test_a_negative_epoch_count_passes_axolotl_and_plans_no_step() -> None:
    validated = accepted_by_axolotl(num_epochs=-1, saves_per_epoch=1)
    assert validated.num_epochs == -1 and validated.save_steps == -1.0
    assert refused_key(num_epochs=-1) == ["num_epochs"]


def test_zero_epochs_passes_axolotls_validation_and_divides_by_zero_in_its_normalization() -> None:
    deep.validated_config(config(num_epochs=0, saves_per_epoch=1), gpu="h100-80gb")
    with pytest.raises(deep.AxolotlRefused):
        accepted_by_axolotl(num_epochs=0, saves_per_epoch=1)
    assert refused_key(num_epochs=0) == ["num_epochs"]


def test_an_empty_base_model_passes_axolotl_and_transformers_cannot_load_it() -> None:
    from transformers import AutoConfig

    assert accepted_by_axolotl(base_model="").base_model == ""
    with pytest.raises((OSError, ValueError)):
        AutoConfig.from_pretrained("")
    assert refused_key(base_model="") == ["base_model"]


def test_an_empty_dataset_path_passes_axolotl_whose_loader_takes_the_launch_directory_for_data() -> None:
    validated = accepted_by_axolotl(datasets=[{"path": "", "type": "chat_template"}])
    assert validated.datasets[0]["path"] == ""
    # axolotl/utils/data/shared.py: `if Path(dataset_config.path).exists(): _load_from_local_path(...)`,
    # which loads a folder with load_from_disk/load_dataset; Path('') is the working directory.
    assert Path("").exists() and Path("").is_dir()
    assert refused_key(datasets=[{"path": "", "type": "chat_template"}]) == ["datasets.0.path"]


@pytest.mark.parametrize(
    ("key", "written", "value"), [("adam_epsilon", "1e-8", 1e-8), ("weight_decay", "1e-2", 0.01)]
)
def test_where_axolotl_is_laxer_than_a_json_type_the_schema_follows(
    key: str, written: str, value: float
) -> None:
    """PyYAML reads `1e-8` as a string; pydantic's lax mode makes it a float, so axolotl accepts it (and so
    does the schema: scripts/generate_axolotl_schema.py _yaml_numbers)."""
    import yaml

    given = yaml.safe_load(f"{key}: {written}")[key]
    assert isinstance(given, str)
    assert accepted_by_axolotl(**{key: given})[key] == pytest.approx(value)
    assert refused_key(**{key: given}) == []
