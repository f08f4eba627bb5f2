"""References the vLLM tier compares against, computed without vLLM: HF transformers + peft on prompts as
mistral-common encodes them (the format the recipes train), and the adapters and data the tests feed in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conversations import reference_prompt, reference_tokens

LABELS = [
    "Home > Kitchen > Knives",
    "Home > Kitchen > Pans",
    "Home > Garden > Tools",
    "Toys > Puzzles > Jigsaw",
]


def make_adapter(base: Path, folder: Path, **lora: Any) -> Path:
    """A peft LoRA adapter on `base` with random (seeded) A and B, saved to `folder`."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base)
    torch.manual_seed(1)
    peft_model = get_peft_model(model, LoraConfig(init_lora_weights=False, lora_dropout=0.0, **lora))
    with torch.no_grad():  # larger than peft's test init, so the adapter changes greedy outputs
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0.0, 0.2)
    peft_model.save_pretrained(folder)
    return folder


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def hf_greedy(
    model_dir: Path, adapter: Path | None, prompts: list[list[int]], max_new_tokens: int
) -> list[list[int]]:
    """The reference: HF transformers (+ peft) greedy decoding, one prompt at a time, stopping at </s>."""
    import torch
    from transformers import AutoModelForCausalLM

    model: Any = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter))
    model.eval()
    outputs = []
    with torch.no_grad():
        for ids in prompts:
            generated = model.generate(
                input_ids=torch.tensor([ids]),
                attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                max_new_tokens=max_new_tokens,
                do_sample=False,
            )
            outputs.append(generated[0][len(ids) :].tolist())
    return outputs


def hf_label_rankings(
    model_dir: Path,
    adapter: Path | None,
    conversations: list[list[dict[str, Any]]],
    labels: list[str],
    version: str = "v3",
) -> list[list[str]]:
    """For each conversation, the label set ranked by HF (+ peft): log-probability of each label's answer
    tokens (Mistral's assistant turn, end of turn included, as mistral-common encodes it) after the prompt."""
    import torch
    from transformers import AutoModelForCausalLM

    model: Any = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter))
    model.eval()
    rankings = []
    for messages in conversations:
        prompt = reference_prompt(version, messages)
        scores = {}
        with torch.no_grad():
            for label in labels:
                full = reference_tokens(
                    version, {"messages": [*messages, {"role": "assistant", "content": label}]}
                )
                assert full[: len(prompt)] == prompt
                logprobs = torch.log_softmax(model(input_ids=torch.tensor([full])).logits[0].float(), dim=-1)
                scores[label] = sum(float(logprobs[i - 1, full[i]]) for i in range(len(prompt), len(full)))
        rankings.append(sorted(labels, key=lambda label: -scores[label]))
    return rankings


def vllm_exhaustive_scores(
    llm: Any, prompts: list[list[int]], answers: dict[str, list[int]], lora: Any = None
) -> list[dict[str, float]]:
    """Every label scored on its own, as eval scored labels before the label trie: for each prompt and
    label one vLLM request of the prompt and the label's answer tokens, the answer's log-probabilities
    read from `prompt_logprobs` (vLLM computes such a request whole: no prefix cache). Returns each
    prompt's scores by label."""
    from vllm import SamplingParams, TokensPrompt

    labels = list(answers)
    sequences = [prompt + answers[label] for prompt in prompts for label in labels]
    outputs = llm.generate(
        [TokensPrompt(prompt_token_ids=sequence) for sequence in sequences],
        SamplingParams(temperature=0, max_tokens=1, prompt_logprobs=0, detokenize=False),
        lora_request=lora,
        use_tqdm=False,
    )
    scores: list[dict[str, float]] = [{} for _ in prompts]
    for position, (sequence, output) in enumerate(zip(sequences, outputs, strict=True)):
        prompt, label = divmod(position, len(labels))
        start = len(prompts[prompt])
        scores[prompt][labels[label]] = sum(
            output.prompt_logprobs[index][sequence[index]].logprob for index in range(start, len(sequence))
        )
    return scores
