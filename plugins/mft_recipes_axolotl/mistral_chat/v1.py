"""axolotl dataset type `mft_recipes_axolotl.mistral_chat.v1`: Mistral's v1 chat format (Mixtral 8x7B)."""

from __future__ import annotations

from typing import Any

from mft_recipes_axolotl.mistral_chat import MistralChatStrategy, load_for


def load(tokenizer: Any, cfg: Any, ds_cfg: Any = None) -> MistralChatStrategy:
    """What axolotl calls for `type: mft_recipes_axolotl.mistral_chat.v1`."""
    return load_for("v1", tokenizer, cfg)
