"""What a recipe's rendered document says about training: sequence length, batch settings, epochs.

`data check --recipe NAME` reads them from the document the recipe renders (an axolotl config or a La
Plateforme job), so the numbers it reports are the ones the trainer will use, overrides included.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from mft_recipes import CategoryPath


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
    dataset_type: str | None = None  # axolotl's type of the first dataset: how conversations become tokens
    category_path: CategoryPath | None = None  # a classifier recipe's answers

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
    """How the checked examples meet a recipe: what is too long, what trains nothing, and one epoch."""

    over_sequence_len: int
    without_trained_tokens: int
    examples_per_epoch: int | None
    tokens_per_epoch: int | None
    steps_per_epoch: int | None
    total_steps: int | None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


KEPT, TRUNCATED, DROPPED, UNTRAINED, RAISES = "kept", "truncated", "dropped", "untrained", "raises"


def axolotl_fate(settings: TrainingSettings, tokens: int, trained_from: int) -> str:
    """What axolotl does with an example of `tokens` tokens whose first trained token is at `trained_from`
    (0: none), read from axolotl 0.19's dataset preparation (utils/data/sft.py, _load_raw_datasets).
    First `handle_long_seq_in_dataset` (utils/data/utils.py) applies excess_length_strategy to rows longer
    than sequence_len: drop (the default) removes them, truncate cuts them to sequence_len, raise stops
    the run. Then, with sample_packing, `process_datasets_for_packing` (utils/trainer.py) drops the rows
    left without a trained token: every answer with weight 0, or all of them cut off. axolotl 0.21 is the
    same."""
    limit = settings.sequence_len
    fate = KEPT
    if limit is not None and tokens > limit:
        strategy = settings.excess_length_strategy
        if strategy != "truncate":
            return RAISES if strategy == "raise" else DROPPED
        fate = TRUNCATED
        trained_from = trained_from if trained_from < limit else 0
    if settings.sample_packing and trained_from == 0:
        return UNTRAINED
    return fate


def trains(settings: TrainingSettings | None, tokens: int, trained_from: int) -> bool:
    """Whether an example puts at least one token into the loss: axolotl keeps it (`axolotl_fate`) and
    its first trained token is within what is kept. Without a recipe: whether any token is trained."""
    if settings is None:
        return trained_from > 0
    if axolotl_fate(settings, tokens, trained_from) not in (KEPT, TRUNCATED):
        return False
    limit = settings.sequence_len
    return trained_from > 0 and (limit is None or trained_from < limit)


def kept_tokens(settings: TrainingSettings, examples: list[tuple[int, int]]) -> list[int]:
    """The tokens of each example axolotl keeps (`axolotl_fate`), as it keeps them (cut to
    sequence_len), before val_set_size is held out. `examples` are (tokens, first trained token) pairs."""
    limit = settings.sequence_len
    return [
        tokens if limit is None else min(tokens, limit)
        for tokens, trained_from in examples
        if axolotl_fate(settings, tokens, trained_from) in (KEPT, TRUNCATED)
    ]


def estimate_epoch(settings: TrainingSettings, examples: list[tuple[int, int]]) -> EpochEstimate:
    """Examples over sequence_len, examples axolotl drops for training nothing, and the training examples,
    tokens and optimizer steps of one epoch. `examples` are (tokens, first trained token) pairs.

    axolotl treats each example as `axolotl_fate` says and holds out `val_set_size` (a fraction, or a
    number of examples) for evaluation. With sample packing a step consumes about micro_batch_size ×
    gradient_accumulation_steps × GPUs sequences of sequence_len tokens (packing is never perfect, so it
    is a lower bound); without packing that many examples. A La Plateforme recipe has no packing or
    truncation in its document, so its examples over seq_len count as dropped; its steps are Mistral's.
    """
    limit = settings.sequence_len
    if limit is None:
        return EpochEstimate(0, 0, None, None, None, None)
    over = sum(1 for tokens, _ in examples if tokens > limit)
    untrained = sum(
        1 for tokens, trained_from in examples if axolotl_fate(settings, tokens, trained_from) == UNTRAINED
    )
    kept = kept_tokens(settings, examples)
    held_out = settings.val_set_size if settings.val_set_size >= 1 else len(kept) * settings.val_set_size
    train_fraction = 1 - held_out / len(kept) if kept else 0.0
    examples_per_epoch = round(len(kept) * train_fraction)
    tokens = round(sum(kept) * train_fraction)
    per_step = settings.sequences_per_step
    if per_step is None or settings.platform:
        return EpochEstimate(over, untrained, examples_per_epoch, tokens, None, None)
    steps = (
        math.ceil(tokens / (limit * per_step))
        if settings.sample_packing
        else math.ceil(examples_per_epoch / per_step)
    )
    total = math.ceil(steps * settings.num_epochs) if settings.num_epochs is not None else None
    return EpochEstimate(over, untrained, examples_per_epoch, tokens, steps, total)


def recipe_settings(name: str, overrides: dict[str, Any]) -> tuple[TrainingSettings, str | None]:
    """The training settings of recipe `name` rendered with `overrides`, and the model name the data's
    tokenizer follows (a La Plateforme model in the document, else the recipe's architecture).

    Required parameters the overrides leave out (the dataset path, label names) cannot change these
    settings: they get the placeholders `plan` renders with."""
    from mft_recipes import ParameterError, RenderError, get_recipes, render_document

    recipe = get_recipes().get(name)
    if recipe is None:
        raise RecipeSettingsError(f"no recipe {name!r}; recipes: {', '.join(sorted(get_recipes()))}")
    try:
        rendered = render_document(recipe, overrides, placeholders=True)
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
        dataset_type=_dataset_type(document),
        category_path=recipe.category_path,
    )
    model = document.get("model") if isinstance(document.get("model"), str) else None
    return settings, model or recipe.model


def _dataset_type(document: dict[str, Any]) -> str | None:
    datasets = document.get("datasets")
    first = datasets[0] if isinstance(datasets, list) and datasets and isinstance(datasets[0], dict) else {}
    kind = first.get("type")
    return kind if isinstance(kind, str) else None


def _number(value: Any, kind: type) -> Any:
    return kind(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
