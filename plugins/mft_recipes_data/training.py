"""What a recipe's rendered document says about training: sequence length, batch settings, epochs.

`data check --recipe NAME` reads them from the document the recipe renders (an axolotl config or a La
Plateforme job), so the numbers it reports are the ones the trainer will use, overrides included.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mft_recipes.host import Registry


class RecipeSettingsError(ValueError):
    """A recipe that does not exist or does not render."""


@dataclass(frozen=True)
class TrainingSettings:
    """The settings of a rendered recipe that decide how the data is consumed."""

    recipe: str
    model: str
    target: str
    sequence_len: int | None
    micro_batch_size: int | None = None
    gradient_accumulation_steps: int | None = None
    num_epochs: float | None = None
    gpus: int = 1
    sample_packing: bool = False
    excess_length_strategy: str = "drop"
    val_set_size: float = 0.0
    job_type: str | None = None

    @property
    def platform(self) -> bool:
        return self.target == "la-plateforme"

    @property
    def sequences_per_step(self) -> int | None:
        if self.micro_batch_size is None or self.gradient_accumulation_steps is None:
            return None
        return self.micro_batch_size * self.gradient_accumulation_steps * max(self.gpus, 1)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EpochEstimate:
    """How the checked examples meet a recipe: what is too long, and what one epoch is."""

    over_sequence_len: int
    examples_per_epoch: int | None
    tokens_per_epoch: int | None
    steps_per_epoch: int | None
    total_steps: int | None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def estimate_epoch(settings: TrainingSettings, token_counts: list[int]) -> EpochEstimate:
    """Examples over sequence_len, and the training examples, tokens and optimizer steps of one epoch.

    axolotl drops examples longer than sequence_len unless `excess_length_strategy: truncate`, and holds
    out `val_set_size` (a fraction, or a number of examples) for evaluation. With sample packing a step
    consumes about micro_batch_size × gradient_accumulation_steps × GPUs sequences of sequence_len tokens
    (packing is never perfect, so it is a lower bound); without packing that many examples.
    """
    limit = settings.sequence_len
    if limit is None:
        return EpochEstimate(0, None, None, None, None)
    over = sum(1 for count in token_counts if count > limit)
    if settings.excess_length_strategy == "truncate":
        kept = [min(count, limit) for count in token_counts]
    else:
        kept = [count for count in token_counts if count <= limit]
    held_out = settings.val_set_size if settings.val_set_size >= 1 else len(kept) * settings.val_set_size
    train_fraction = 1 - held_out / len(kept) if kept else 0.0
    examples = round(len(kept) * train_fraction)
    tokens = round(sum(kept) * train_fraction)
    per_step = settings.sequences_per_step
    if per_step is None or settings.platform:
        return EpochEstimate(over, examples, tokens, None, None)
    steps = (
        math.ceil(tokens / (limit * per_step)) if settings.sample_packing else math.ceil(examples / per_step)
    )
    total = math.ceil(steps * settings.num_epochs) if settings.num_epochs is not None else None
    return EpochEstimate(over, examples, tokens, steps, total)


def recipe_settings(
    name: str, overrides: dict[str, Any], registry: Registry
) -> tuple[TrainingSettings, str | None]:
    """The training settings of recipe `name` rendered with `overrides`, and the model name the data's
    tokenizer follows (a La Plateforme model in the document, else the recipe's architecture).

    Required parameters the overrides leave out (the dataset path, label names) cannot change these
    settings: they get the placeholders `plan` renders with."""
    from mft_recipes_plan.rendering import render_for_plan

    from mft_recipes.recipes import ParameterError
    from mft_recipes.render import RenderError

    recipe = registry.recipes.get(name)
    if recipe is None:
        raise RecipeSettingsError(f"no recipe {name!r}; recipes: {', '.join(sorted(registry.recipes))}")
    try:
        rendered = render_for_plan(recipe, overrides, registry)
    except (ParameterError, RenderError) as error:
        raise RecipeSettingsError(f"recipe {name!r} does not render: {error}") from error
    document = rendered.document
    hyper: dict[str, Any] = document.get("hyperparameters") or {}
    validation = document.get("val_set_size", 0.0)
    settings = TrainingSettings(
        recipe=name,
        model=recipe.model,
        target=recipe.target,
        sequence_len=_number(document.get("sequence_len", hyper.get("seq_len")), int),
        micro_batch_size=_number(document.get("micro_batch_size"), int),
        gradient_accumulation_steps=_number(document.get("gradient_accumulation_steps"), int),
        num_epochs=_number(document.get("num_epochs", hyper.get("epochs")), float),
        gpus=recipe.hardware.gpus,
        sample_packing=bool(document.get("sample_packing", False)),
        excess_length_strategy=str(document.get("excess_length_strategy") or "drop"),
        val_set_size=float(validation) if isinstance(validation, (int, float)) else 0.0,
        job_type=document.get("job_type"),
    )
    model = document.get("model") if isinstance(document.get("model"), str) else None
    return settings, model or recipe.model


def _number(value: Any, kind: type) -> Any:
    return kind(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
