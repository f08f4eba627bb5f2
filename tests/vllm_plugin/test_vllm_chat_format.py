"""The trained chat format reaches serving. `export` writes it into its folder (chat_template.jinja and
mistral-common's tokenizer file), and both `eval` and vLLM loaded as the printed serve command loads it
encode a conversation exactly as mistral-common encodes it with the generation prompt: on an exported
LoRA adapter (Mistral 7B's v3 format, tool calls included) and on a merged model (Mixtral 8x7B's v1).
The tiny models, like published base models, carry no template of their own."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mft_recipes_catalogue.chat_format import chat_template

from tests.conversations import conversations, reference_prompt
from tests.vllm_plugin.test_vllm_eval import ENGINE

pytestmark = pytest.mark.vllm


def export(adapter: Path, base: Path, output: Path) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mft_recipes",
            "export",
            str(adapter),
            "--base",
            str(base),
            "-o",
            str(output),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def prompts(version: str) -> list[tuple[list[dict[str, Any]], Any]]:
    """Each test conversation up to its last answer (ending with the user or a tool result), as a chat
    request carries it (no training weights), with its tools."""
    return [
        (
            [{k: v for k, v in m.items() if k != "weight"} for m in example["messages"][:-1]],
            example.get("tools"),
        )
        for example in conversations(version)
    ]


@pytest.fixture(scope="module")
def exported(
    tiny_mistral: Path, dense_adapter: Path, tiny_mixtral: Path, expert_adapter: Path, tmp_path_factory: Any
) -> dict[str, tuple[dict[str, Any], Path, str]]:
    """The dense adapter exported as LoRA (v3) and the expert adapter merged (v1): (result, base, version)."""
    pytest.importorskip("vllm")
    folder = tmp_path_factory.mktemp("exports")
    return {
        "lora": (export(dense_adapter, tiny_mistral, folder / "lora"), tiny_mistral, "v3"),
        "merged": (export(expert_adapter, tiny_mixtral, folder / "merged"), tiny_mixtral, "v1"),
    }


@pytest.mark.parametrize("kind", ["lora", "merged"])
def test_export_writes_the_trained_format_and_serves_with_it(
    kind: str, exported: dict[str, tuple[dict[str, Any], Path, str]]
) -> None:
    from vllm.tokenizers import get_tokenizer

    result, _, version = exported[kind]
    out = Path(result["output"])
    assert result["merged"] is (kind == "merged")
    assert result["chat_format"]["mistral_version"] == version
    assert (out / "chat_template.jinja").read_text() == chat_template(version)
    assert (out / f"tokenizer.model.{version}").is_file()
    command = shlex.split(result["serve_command"])
    assert command[command.index("--tokenizer-mode") + 1] == "mistral"
    # vLLM's tokenizer, loaded as the printed command loads it, formats every chat request as training did.
    tokenizer_folder = command[command.index("--tokenizer") + 1] if "--tokenizer" in command else str(out)
    tokenizer = get_tokenizer(tokenizer_folder, tokenizer_mode="mistral")
    for messages, tools in prompts(version):
        served = tokenizer.apply_chat_template(messages, tools=tools, add_generation_prompt=True)
        assert served == reference_prompt(version, messages, tools), messages


@pytest.mark.parametrize("kind", ["lora", "merged"])
def test_eval_prompts_are_mistral_commons_encoding(
    kind: str, exported: dict[str, tuple[dict[str, Any], Path, str]], tmp_path: Path
) -> None:
    from mft_recipes_vllm.chat import PromptEncoder, find_chat_format

    result, base, version = exported[kind]
    cases = prompts(version)
    encoder = PromptEncoder(find_chat_format(result["output"], str(base)), tokenizer=None)
    expected = [reference_prompt(version, messages, tools) for messages, tools in cases]
    assert encoder.prompts(cases) == expected

    # End to end: eval of the export, base and trained model side by side, sends exactly those prompts.
    data = tmp_path / "test.jsonl"
    data.write_text("".join(json.dumps(example) + "\n" for example in conversations(version)))
    out = tmp_path / "eval"
    sizes = ["--max-tokens", "2", "--latency-requests", "0", *ENGINE]
    where = ["--model", str(base), "--adapter", result["output"], "--data", str(data), "-o", str(out)]
    command = [sys.executable, "-m", "mft_recipes", "eval", *where, *sizes]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    for name in ("base", "adapter"):
        lengths = [
            r["prompt_tokens"] for r in sorted(records, key=lambda r: r["index"]) if r["model"] == name
        ]
        assert lengths == [len(ids) for ids in expected], name
    assert json.loads((out / "run.json").read_text())["chat_format"]["mistral_version"] == version
