"""One exit-code contract for every command, plugins' included, given the mistakes people make:

- 0: ok;
- 1: the input was read and is invalid, or a check failed;
- 2: usage: an unknown name or option, a bad value, a missing or unreadable path, a folder where a file
  is expected, an output that cannot be written, a missing optional extra (named with its pip command),
  a malformed URL.

Each case asserts the exit code, a message that names the file, key or option, no traceback, and that no
file in the folder of inputs was made, changed or left half-written. A missing extra is made missing
with `sys.modules[name] = None` for the package and its submodules (what Python does for a module it
cannot import); tests/host/
test_host_extras.py installs each extra alone into a fresh environment for the real thing. The
per-plugin batteries (tests/data/test_bad_inputs.py, tests/platform_plugin/test_bad_inputs.py) cover
each command's own mistakes in depth; this one holds every command to the same contract.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from tests.refusals import assert_refused, mft, snapshot

CHAT = '{"messages": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}]}\n'
ENV = {"MISTRAL_API_KEY": "test-key", "MISTRAL_SERVER_URL": "http://127.0.0.1:9"}


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    """A folder of inputs, good and bad, as a user's working folder holds them."""
    good = tmp_path / "good.yml"
    assert mft("render", "mistral-7b-qlora", "dataset=train.jsonl", "-o", str(good)).exit_code == 0
    (tmp_path / "bad.yml").write_text(good.read_text().replace("load_in_4bit: true", "load_in_4bit: false"))
    (tmp_path / "syntax.yml").write_text("base_model: mistralai/Mistral-7B-v0.3\nadapter: [qlora\n")
    (tmp_path / "notes.txt").write_text("a file, not a folder\n")
    (tmp_path / "folder").mkdir()
    (tmp_path / "adapter").mkdir()
    lora = tmp_path / "lora"  # what peft saves, enough to be read (the weights are never opened here)
    lora.mkdir()
    (lora / "adapter_config.json").write_text(
        '{"base_model_name_or_path": "mistralai/Mistral-7B-v0.3", "r": 8}'
    )
    (lora / "adapter_model.safetensors").write_bytes(b"")
    # A path that exists and cannot be read, whoever runs the tests (root reads a file of mode 000; nobody
    # reads a socket): os.access says yes to both, so only opening it tells.
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "locked.yml"))
    (tmp_path / "train.jsonl").write_text(CHAT * 2)
    (tmp_path / "broken.jsonl").write_text('{"messages": [{"role": "assistant", "content": "Hi."}]}\n')
    (tmp_path / "faq.csv").write_text("question,answer\nWhat?,That.\n")
    (tmp_path / "table.yaml").write_text(
        "gpus:\n  mine: {memory_gib: lots, bf16_tflops: 1, usd_per_hour: 1}\n"
    )
    return tmp_path


# name: (command line, exit code, what the message names); "{d}" is the folder of inputs. A fourth item,
# when there is one, is the module made missing (an optional extra) or changes to the environment.
CASES: dict[str, tuple] = {
    # the host's commands
    "list: an unknown option": (["list", "--bogus"], 2, ["--bogus"]),
    "plugins: an unknown option": (["plugins", "--bogus"], 2, ["--bogus"]),
    "show: an unknown recipe": (["show", "mixtral"], 2, ["no recipe 'mixtral'", "mixtral-moe"]),
    "render: an unknown recipe": (["render", "mistral-7b"], 2, ["no recipe 'mistral-7b'"]),
    "render: an override of the wrong type": (
        ["render", "mistral-7b-lora", "dataset=d.jsonl", "lora_r=big"], 2, ["lora_r='big'"],
    ),
    "render: a required parameter left out": (["render", "mistral-7b-lora"], 2, ["dataset is required"]),
    "render: -o under a file": (
        ["render", "mistral-7b-lora", "dataset=d.jsonl", "-o", "{d}/notes.txt/x.yml"], 2,
        ["{d}/notes.txt/x.yml", "{d}/notes.txt is not a folder"],
    ),
    "render: -o a folder": (["render", "mistral-7b-lora", "dataset=d.jsonl", "-o", "{d}/folder"], 2, ["{d}/folder"]),
    "render: -o where no file can be made": (
        ["render", "mistral-7b-lora", "dataset=d.jsonl", "-o", "/proc/x.yml"], 2, ["-o /proc/x.yml", "/proc"],
    ),
    "render: -o an extension against --format": (
        ["render", "mistral-7b-lora", "dataset=d.jsonl", "--format", "json", "-o", "{d}/good.yml"], 2,
        ["-o {d}/good.yml", "--format says json"],
    ),
    "validate: a missing file": (["validate", "{d}/missing.yml"], 2, ["{d}/missing.yml", "does not exist"]),
    "validate: a folder": (["validate", "{d}/folder"], 2, ["{d}/folder", "is a directory"]),
    "validate: an unreadable file": (["validate", "{d}/locked.yml"], 2, ["{d}/locked.yml", "not readable"]),
    "validate: an invalid config": (["validate", "{d}/bad.yml"], 1, ["{d}/bad.yml:", "adapter", "qlora-without-4bit"]),
    "validate: not YAML": (["validate", "{d}/syntax.yml"], 1, ["{d}/syntax.yml:3", "not valid YAML or JSON"]),
    "validate: an unknown --kind": (["validate", "--kind", "torchtune", "{d}/good.yml"], 2, ["--kind 'torchtune'"]),
    "validate: --deep without axolotl": (
        ["validate", "--deep", "{d}/good.yml"], 2, ["--deep", "needs axolotl", "pip install 'mft-recipes[axolotl]'"],
        "axolotl",
    ),
    # plan
    "plan: an unknown recipe": (["plan", "mixtral"], 2, ["no recipe 'mixtral'"]),
    "plan: --tokens that is not a count": (["plan", "mixtral-moe", "--tokens", "lots"], 2, ["--tokens", "'lots'"]),
    "plan: an unknown --gpu": (["plan", "mixtral-moe", "--gpu", "b200"], 2, ["unknown GPU 'b200'"]),
    "plan: a missing --data file": (["plan", "mixtral-moe", "--data", "{d}/missing.jsonl"], 2, ["{d}/missing.jsonl"]),
    "plan: --data a folder": (["plan", "mixtral-moe", "--data", "{d}/folder"], 2, ["{d}/folder", "is a directory"]),
    "plan: --data without mistral-common": (
        ["plan", "mixtral-moe", "--data", "{d}/train.jsonl"], 2, ["mistral-common", "pip install 'mft-recipes[data]'"],
        "mistral_common",
    ),
    "plan: a missing --gpu-table": (["plan", "mixtral-moe", "--gpu-table", "{d}/missing.yaml"], 2, ["{d}/missing.yaml"]),
    "plan: an invalid --gpu-table": (
        ["plan", "mixtral-moe", "--gpu-table", "{d}/table.yaml"], 1, ["{d}/table.yaml", "gpus.mine.memory_gib"],
    ),
    "plan: --plot without matplotlib": (
        ["plan", "mixtral-moe", "--plot", "{d}/plan.png"], 2, ["--plot", "pip install 'mft-recipes[plot]'"], "matplotlib",
    ),
    "plan: --plot under a file": (
        ["plan", "mixtral-moe", "--plot", "{d}/notes.txt/plan.png"], 2, ["--plot {d}/notes.txt/plan.png"],
    ),
    "plan: --check on a plan that does not fit": (
        ["plan", "mixtral-8x22b", "--gpus", "4", "--check"], 1, ["mixtral-8x22b does not fit", "GiB per GPU"],
    ),
    # data
    "data check: a missing file": (["data", "check", "{d}/missing.jsonl"], 2, ["{d}/missing.jsonl"]),
    "data check: a folder": (["data", "check", "{d}/folder"], 2, ["{d}/folder", "is a directory"]),
    "data check: an unreadable file": (["data", "check", "{d}/locked.yml"], 2, ["{d}/locked.yml", "not readable"]),
    "data check: invalid examples": (["data", "check", "{d}/broken.jsonl"], 1, []),
    "data check: without mistral-common": (
        ["data", "check", "{d}/train.jsonl"], 2, ["pip install 'mft-recipes[data]'"], "mistral_common",
    ),
    "data check: --write-clean under a file": (
        ["data", "check", "{d}/train.jsonl", "--write-clean", "{d}/notes.txt/clean.jsonl"], 2,
        ["--write-clean {d}/notes.txt/clean.jsonl"],
    ),
    "data convert: a missing input": (
        ["data", "convert", "{d}/missing.csv", "-o", "{d}/out.jsonl", "--user", "{question}", "--assistant", "{answer}"],
        2, ["{d}/missing.csv"],
    ),
    "data convert: -o under a file": (
        ["data", "convert", "{d}/faq.csv", "-o", "{d}/notes.txt/out.jsonl", "--user", "{question}", "--assistant", "{answer}"],
        2, ["-o {d}/notes.txt/out.jsonl"],
    ),
    "data split: a folder as input": (
        ["data", "split", "{d}/folder", "--train", "{d}/t.jsonl", "--validation", "{d}/v.jsonl"], 2, ["{d}/folder"],
    ),
    # export and eval (eval's cases that need vLLM running: tests/vllm_plugin/test_eval_bad_inputs.py)
    "export: a missing folder": (["export", "{d}/missing"], 2, ["{d}/missing", "does not exist"]),
    "export: a file for the folder": (["export", "{d}/notes.txt"], 2, ["{d}/notes.txt", "is a file"]),
    "export: a folder with no adapter": (["export", "{d}/adapter"], 1, ["{d}/adapter: no adapter_config.json"]),
    "export: without its extra": (
        ["export", "{d}/lora"], 2, ["safetensors", "pip install 'mft-recipes[vllm]'"], "safetensors",
    ),
    "export: -o where no folder can be made": (
        ["export", "{d}/lora", "-o", "/proc/x"], 2, ["-o /proc/x: cannot write the export there", "/proc"],
    ),
    "export: -o under a file": (
        ["export", "{d}/lora", "-o", "{d}/notes.txt/out"], 2, ["-o {d}/notes.txt/out", "{d}/notes.txt is a file"],
    ),
    "eval: a missing --data file": (
        ["eval", "--model", "m", "--data", "{d}/missing.jsonl"], 2, ["--data", "{d}/missing.jsonl"],
    ),
    "eval: a folder for --data": (["eval", "--model", "m", "--data", "{d}/folder"], 2, ["{d}/folder"]),
    "eval: a missing --adapter folder": (
        ["eval", "--model", "m", "--data", "{d}/train.jsonl", "--adapter", "{d}/missing"], 2,
        ["--adapter", "{d}/missing"],
    ),
    "eval: a file for --adapter": (
        ["eval", "--model", "m", "--data", "{d}/train.jsonl", "--adapter", "{d}/notes.txt"], 2,
        ["{d}/notes.txt", "is a file"],
    ),
    "eval: a file for -o": (
        ["eval", "--model", "m", "--data", "{d}/train.jsonl", "-o", "{d}/notes.txt"], 2, ["{d}/notes.txt", "is a file"],
    ),
    "eval: a missing --labels file": (
        ["eval", "--model", "m", "--data", "{d}/train.jsonl", "--labels", "{d}/labels.txt"], 2, ["{d}/labels.txt"],
    ),
    "eval: without vllm": (
        ["eval", "--model", "m", "--data", "{d}/train.jsonl", "-o", "{d}/eval"], 2,
        ["vLLM", "pip install 'mft-recipes[vllm]'"], "vllm",
    ),
    # platform
    "platform: no API key": (
        ["platform", "list"], 2, ["MISTRAL_API_KEY", "--api-key-file"], {"MISTRAL_API_KEY": None},
    ),
    "platform: without mistralai": (
        ["platform", "list"], 2, ["mistralai", "pip install 'mft-recipes[platform]'"], "mistralai",
    ),
    "platform: a malformed --server-url": (
        ["platform", "list", "--server-url", "localhost:8080"], 2, ["--server-url", "'localhost:8080'"],
    ),
    "platform submit: a missing --train file": (
        ["platform", "submit", "platform-mistral-7b", "--train", "{d}/missing.jsonl"], 2, ["{d}/missing.jsonl"],
    ),
    "platform submit: an unknown recipe": (
        ["platform", "submit", "mixtral", "--train", "{d}/train.jsonl"], 2, ["no recipe 'mixtral'"],
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_every_command_keeps_the_exit_code_contract(
    name: str, inputs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args, code, needles, *extra = CASES[name]
    env = dict(ENV)
    for change in extra:
        if isinstance(change, str):  # the package and what other tests have loaded of it
            for module in [change, *(loaded for loaded in sys.modules if loaded.startswith(change + "."))]:
                monkeypatch.setitem(sys.modules, module, None)
        else:
            env.update(change)
    if name.startswith(("data", "plan: --data")) and "mistral_common" not in extra:
        pytest.importorskip("mistral_common", reason="the data commands count tokens with mistral-common")
    before = snapshot(inputs)
    result = mft(*(arg.replace("{d}", str(inputs)) for arg in args), env=env)
    assert_refused(result, code, *(needle.replace("{d}", str(inputs)) for needle in needles))
    assert snapshot(inputs) == before, "a refused command makes, changes or leaves no file"
