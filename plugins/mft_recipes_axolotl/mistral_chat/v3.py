"""axolotl dataset type `mft_recipes_axolotl.mistral_chat.v3`: Mistral's v3 chat format (Mistral 7B v0.3 and Mixtral 8x22B)."""

from __future__ import annotations

from typing import Any

from mft_recipes_axolotl.mistral_chat import MistralChatStrategy, load_for


def load(tokenizer: Any, cfg: Any, ds_cfg: Any = None) -> MistralChatStrategy:
    """What axolotl calls for `type: mft_recipes_axolotl.mistral_chat.v3`."""
    return load_for("v3", tokenizer, cfg)
