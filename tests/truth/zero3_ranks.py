"""One rank of a two-process ZeRO-3 run on CPU (`torchrun --nproc_per_node 2 -m tests.truth.zero3_ranks
CONFIG OUTPUT`): the DeepSpeed setup of a rendered multi-GPU recipe, on a tiny model, without axolotl's
launcher (whose CPU multi-process paths do not run: see docs/proof.md).

Each rank does what axolotl's loader and the HF Trainer do under ZeRO-3: the recipe's DeepSpeed section,
"auto" resolved for the world size, is made live (so `from_pretrained` partitions the weights with
`zero.Init`; every loaded weight is compared with the checkpoint's), axolotl's own `load_lora` applies the recipe's LoRA (if any) to the partitioned model,
`deepspeed.initialize` builds the ZeRO-3 engine over gloo, and a few optimizer steps run on the tiny data.
Rank 0 writes what was trained to OUTPUT as JSON, with what each rank holds of the partitioned weights and
the node it ran on (tests/truth/test_truth_multinode.py starts the ranks as two nodes).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
import yaml


def main(config_path: str, output_path: str) -> None:
    import deepspeed
    from axolotl.utils.dict import DictDefault
    from mft_recipes_axolotl import deep
    from mft_recipes_axolotl.deepspeed_check import resolved_deepspeed
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.integrations.deepspeed import HfDeepSpeedConfig

    deepspeed.init_distributed(dist_backend="gloo")
    world = torch.distributed.get_world_size()
    document = yaml.safe_load(Path(config_path).read_text(encoding="utf-8"))
    config: DictDefault = deep.axolotl_config(document, document["base_model"], gpus=world)
    section = resolved_deepspeed(config, world, deep.meta_model_config(config))
    # The checkpoint's weights as transformers loads them without ZeRO-3, to hold the partitioned load to.
    reference = AutoModelForCausalLM.from_pretrained(document["base_model"], dtype=torch.float32)
    expected = {name: parameter.detach() for name, parameter in reference.named_parameters()}
    live = HfDeepSpeedConfig(section)  # noqa: F841 (kept alive: transformers reads it while loading)
    model = AutoModelForCausalLM.from_pretrained(document["base_model"], dtype=torch.float32)
    mismatched = []  # weights ZeRO-3's load made other than the checkpoint's (gathered whole on every rank)
    for name, parameter in model.named_parameters():
        with deepspeed.zero.GatheredParameters([parameter]):
            if not torch.equal(parameter.data, expected[name]):
                mismatched.append(name)
    if config.adapter:
        from axolotl.loaders.adapter import load_lora

        model, _ = load_lora(model, config)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-3)
    engine, *_ = deepspeed.initialize(model=model, optimizer=optimizer, config=section)
    tokenizer = AutoTokenizer.from_pretrained(document["base_model"])
    losses = []
    for step in range(3):
        text = f"[INST] What is {step} plus {world}?[/INST] {step} plus {world} is {step + world}.</s>"
        batch = tokenizer([text] * section["train_micro_batch_size_per_gpu"], return_tensors="pt")
        loss = engine(**batch, labels=batch["input_ids"]).loss
        engine.backward(loss)
        engine.step()
        losses.append(float(loss))
    names = [name for name, p in engine.module.named_parameters() if p.requires_grad]
    # What this rank holds of the ZeRO-3-partitioned weights (ds_tensor, its partition) against their whole
    # size (ds_numel), and the node it runs on (torchrun's GROUP_RANK).
    parameters = [p for p in engine.module.parameters() if hasattr(p, "ds_numel")]
    held = {
        "rank": torch.distributed.get_rank(),
        "node": int(os.environ.get("GROUP_RANK", "0")),
        "partition_numel": sum(p.ds_tensor.numel() for p in parameters),
        "total_numel": sum(p.ds_numel for p in parameters),
        "partitioned_params": len(parameters),
    }
    everyone: list[dict | None] = [None] * world
    torch.distributed.all_gather_object(everyone, held)
    if torch.distributed.get_rank() == 0:
        result = {
            "world_size": world,
            "losses": losses,
            "mismatched": mismatched,
            "trainable": names,
            "zero_stage": engine.zero_optimization_stage(),
            "ranks": everyone,
        }
        Path(output_path).write_text(json.dumps(result), encoding="utf-8")
    # Leave together and close the group: a rank that exits while the other still talks gloo aborts.
    torch.distributed.barrier()
    engine.destroy()
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
