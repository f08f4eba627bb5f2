"""Model architectures: the published config values that recipes, validators and plans reason about."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Architecture:
    """The shape of a model, as in its published config.json.

    `hub_ids` are the names under which the weights are published; a document whose `base_model` is one
    of them is taken to be this architecture. `tokenizer` names mistral-common's tokenizer version.
    """

    name: str
    model_type: str
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    vocab_size: int
    max_position_embeddings: int
    tokenizer: str
    hub_ids: tuple[str, ...] = ()
    head_dim: int | None = None
    num_local_experts: int = 0
    num_experts_per_tok: int = 0
    tie_word_embeddings: bool = False
    rope_theta: float = 1_000_000.0
    rms_norm_eps: float = 1e-5

    @property
    def is_moe(self) -> bool:
        return self.num_local_experts > 0

    @property
    def attention_head_dim(self) -> int:
        return self.head_dim or self.hidden_size // self.num_attention_heads

    def hf_config(self) -> dict[str, Any]:
        """The config.json a transformers model of this architecture is built from."""
        keys = [
            "model_type",
            "hidden_size",
            "intermediate_size",
            "num_hidden_layers",
            "num_attention_heads",
            "num_key_value_heads",
            "vocab_size",
            "max_position_embeddings",
            "tie_word_embeddings",
            "rope_theta",
            "rms_norm_eps",
        ]
        values = asdict(self)
        config = {key: values[key] for key in keys}
        config["head_dim"] = self.attention_head_dim
        config["architectures"] = ["MixtralForCausalLM" if self.is_moe else "MistralForCausalLM"]
        if self.is_moe:
            config["num_local_experts"] = self.num_local_experts
            config["num_experts_per_tok"] = self.num_experts_per_tok
        return config

    @classmethod
    def from_hf_config(cls, name: str, config: dict[str, Any]) -> Architecture:
        """Read a transformers config.json (mistral or mixtral) into an Architecture."""
        model_type = config.get("model_type", "")
        if model_type not in ("mistral", "mixtral"):
            raise ValueError(f"{name}: model_type {model_type!r} is not mistral or mixtral")
        vocab = int(config["vocab_size"])
        return cls(
            name=name,
            model_type=model_type,
            hidden_size=int(config["hidden_size"]),
            intermediate_size=int(config["intermediate_size"]),
            num_hidden_layers=int(config["num_hidden_layers"]),
            num_attention_heads=int(config["num_attention_heads"]),
            num_key_value_heads=int(config.get("num_key_value_heads") or config["num_attention_heads"]),
            vocab_size=vocab,
            max_position_embeddings=int(config.get("max_position_embeddings", 32768)),
            tokenizer="v1" if vocab == 32000 else "v3" if vocab == 32768 else "tekken",
            head_dim=config.get("head_dim"),
            num_local_experts=int(config.get("num_local_experts") or 0),
            num_experts_per_tok=int(config.get("num_experts_per_tok") or 0),
            tie_word_embeddings=bool(config.get("tie_word_embeddings", False)),
            rope_theta=float(config.get("rope_theta", 1_000_000.0)),
            rms_norm_eps=float(config.get("rms_norm_eps", 1e-5)),
        )


class Architectures(Mapping[str, Architecture]):
    """The registered architectures by name, read-only, and `find(base_model)`: what hooks and commands
    are given to tell which architecture a document's `base_model` names. A view: it follows the registry."""

    def __init__(self, by_name: Mapping[str, Architecture]) -> None:
        self._by_name = by_name

    def __getitem__(self, name: str) -> Architecture:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def find(self, base_model: str) -> Architecture | None:
        """The architecture of a `base_model` value: a catalogue name, a hub id, or a local model folder."""
        for architecture in self._by_name.values():
            if base_model == architecture.name or base_model in architecture.hub_ids:
                return architecture
        config = Path(base_model) / "config.json"
        if config.is_file():
            try:
                return Architecture.from_hf_config(base_model, json.loads(config.read_text()))
            except (ValueError, KeyError, json.JSONDecodeError):
                return None
        return None
