"""Tiny Mistral and Mixtral models on disk, built offline, for the heavy test tiers (vLLM, axolotl).

No model hub: the architecture comes from a transformers config (the real Mistral/Mixtral classes,
scaled down), the weights are random with a fixed seed, and the tokenizer is a real Mistral tokenizer
that ships inside mistral-common, converted for transformers. Like the published base models' tokenizers
it carries no chat template: whatever formats a chat must bring its own (the recipes write Mistral's
format, docs/chat-format.md), so no tier can pass on a template the real models do not have.

head_dim is 32 by default: vLLM's CPU attention accepts 32, 64, 80, 96, 112, 128, ... only.

Importable with only torch + transformers + mistral-common (sentencepiece) installed; everything heavy
is imported inside the functions.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path


def build_tiny_model(
    directory: str | Path,
    *,
    moe: bool = False,
    tokenizer: str = "v3",
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 2,
    num_kv_heads: int = 1,
    intermediate_size: int = 128,
    num_experts: int = 4,
    experts_per_token: int = 2,
    max_position_embeddings: int = 1024,
    seed: int = 0,
) -> Path:
    """Write a tiny Mistral (or, with `moe=True`, Mixtral) model and its tokenizer to `directory`.

    Returns the directory, ready for `from_pretrained`, axolotl's `base_model` and vLLM's `LLM(model=...)`.
    Weights are float32 (vLLM on CPU and the HF reference then compute the same numbers).
    """
    import torch
    from transformers import MistralConfig, MistralForCausalLM, MixtralConfig, MixtralForCausalLM

    directory = Path(directory)
    hf_tokenizer = build_tokenizer(directory, version=tokenizer)
    common = {
        "vocab_size": len(hf_tokenizer),
        "hidden_size": hidden_size,
        "intermediate_size": intermediate_size,
        "num_hidden_layers": num_layers,
        "num_attention_heads": num_heads,
        "num_key_value_heads": num_kv_heads,
        "head_dim": hidden_size // num_heads,
        "max_position_embeddings": max_position_embeddings,
        "bos_token_id": hf_tokenizer.bos_token_id,
        "eos_token_id": hf_tokenizer.eos_token_id,
        "tie_word_embeddings": False,
        "sliding_window": None,
        "rope_theta": 1_000_000.0,
    }
    torch.manual_seed(seed)
    if moe:
        config = MixtralConfig(**common, num_local_experts=num_experts, num_experts_per_tok=experts_per_token)
        model = MixtralForCausalLM(config)
    else:
        model = MistralForCausalLM(MistralConfig(**common))
    # Larger than the default init so that greedy outputs depend clearly on the weights (and on an adapter).
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() >= 2:  # matrices and experts; norms keep their ones
                parameter.normal_(0.0, 0.08)
    model.to(torch.float32).save_pretrained(directory)
    return directory


def build_tokenizer(directory: str | Path, *, version: str = "v3"):
    """Write Mistral's `version` tokenizer (v1 or v3, from mistral-common) in transformers' format, without
    a chat template, to `directory`, and return it loaded."""
    from mft_recipes_catalogue.chat_format import tokenizer_path
    from transformers import AutoTokenizer

    if version not in ("v1", "v3"):
        raise ValueError(f"tokenizer {version!r}: expected v1 or v3 (sentencepiece models)")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    source = tokenizer_path(version)
    staging = directory / ".tokenizer-source"
    staging.mkdir(exist_ok=True)
    shutil.copyfile(source, staging / "tokenizer.model")
    settings = {
        "tokenizer_class": "LlamaTokenizer",
        "legacy": False,
        "add_bos_token": True,
        "add_eos_token": False,
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
    }
    (staging / "tokenizer_config.json").write_text(json.dumps(settings))
    tokenizer = AutoTokenizer.from_pretrained(staging)  # converts the sentencepiece model to tokenizer.json
    shutil.rmtree(staging)
    tokenizer.pad_token = tokenizer.unk_token  # axolotl and batched HF generation need a pad token
    tokenizer.save_pretrained(directory)
    return tokenizer
