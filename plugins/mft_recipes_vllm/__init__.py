"""Built-in plugin: after training, export adapters for vLLM and evaluate them with vLLM.

Contributes the `vllm` exporter, the generation metrics (exact match, normalised match, token F1) and
the `export` and `eval` commands. vLLM, torch and peft are imported only when a command runs.
"""

from __future__ import annotations

from typing import Any

from mft_recipes import Exporter, hookimpl


def _export(adapter_dir: Any, **options: Any) -> dict[str, Any]:
    from mft_recipes_vllm.export import export

    return export(adapter_dir, **options)


@hookimpl
def register_exporters(register: Any) -> None:
    register(
        Exporter(
            "vllm",
            "a peft adapter checked for vLLM's LoRA (rank, modules, MoE experts), merged when it must be",
            _export,
        )
    )


@hookimpl
def register_metrics(register: Any) -> None:
    from mft_recipes_vllm.metrics import BUILTIN_METRICS

    for metric in BUILTIN_METRICS:
        register(metric)


@hookimpl
def register_commands(cli: Any) -> None:
    from mft_recipes_vllm.commands import eval_command, export_command

    cli.add_command(export_command)
    cli.add_command(eval_command)
