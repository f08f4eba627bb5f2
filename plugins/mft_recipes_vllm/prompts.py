"""A test set's prompts as vLLM is given them, encoded once, before any engine starts: the same tokens for
every variant, and the context they need, which sizes the engine (`--max-model-len`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mft_recipes_vllm.chat import ChatFormat, PromptEncoder
from mft_recipes_vllm.engine import failure_cause
from mft_recipes_vllm.eval_data import EvalError, Example, Task

# Tokens a classification answer may take beyond the longest label's own: the choice constraint lets
# the model end its turn after the label.
LABEL_SLACK = 8


@dataclass(frozen=True)
class EncodedTestSet:
    """The prompt tokens of each example (by index); for a classification, each label's tokens as the
    assistant's answer (end of turn included), which the label ranking scores after each prompt; and
    the most tokens an answer is given to generate."""

    prompts: list[list[int]]
    continuations: dict[str, list[int]]
    answer_tokens: int

    def longest(self) -> int:
        """The index of the example with the longest prompt."""
        return max(range(len(self.prompts)), key=lambda index: len(self.prompts[index]))

    def context_needed(self) -> int:
        """Tokens one sequence may reach: the longest prompt and the longest answer (a generated one, or
        a label scored after it, which vLLM asks for one more token)."""
        scored = max((len(ids) + 1 for ids in self.continuations.values()), default=0)
        return len(self.prompts[self.longest()]) + max(self.answer_tokens, scored)


def load_tokenizer(model: str) -> Any:
    """The tokenizer vLLM's engine for `model` uses (vllm.tokenizers.get_tokenizer, as the engine loads
    it: Mistral's own tokenizer for a Mistral repository, else the Hugging Face one), loaded without an
    engine. vLLM must be importable."""
    from vllm.tokenizers import get_tokenizer

    try:
        return get_tokenizer(model)
    except Exception as error:  # OSError from the hub or a folder, ValueError from a config
        raise EvalError(f"--model {model}: cannot load its tokenizer: {failure_cause(error)}") from error


def encode_test_set(
    examples: list[Example], task: Task, chat_format: ChatFormat | None, tokenizer: Any
) -> EncodedTestSet:
    """Encode every prompt in the trained model's chat format (mft_recipes_vllm.chat); for a
    classification, each label as the answer to the first example (a label's tokens do not depend on
    the question)."""
    encoder = PromptEncoder(chat_format, tokenizer)
    prompts = encoder.prompts([(example.messages, example.tools) for example in examples])
    if task.kind != "classification":
        return EncodedTestSet(prompts, {}, task.max_tokens)
    first = examples[0]
    continuations = {label: encoder.answer(first.messages, prompts[0], label) for label in task.labels}
    longest = max(len(tokenizer(label, add_special_tokens=False).input_ids) for label in task.labels)
    return EncodedTestSet(prompts, continuations, longest + LABEL_SLACK)
