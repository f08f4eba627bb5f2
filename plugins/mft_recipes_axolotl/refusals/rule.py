"""A refusal of axolotl's (`Refusal`) and a config as axolotl's validators read it (`AxolotlConfig`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mft_recipes import Problem, ValidationContext

# axolotl's legacy boolean attention flags and the backend each means, in the priority order of
# AxolotlInputConfig.normalize_attn_implementation (enums.LEGACY_ATTN_FLAG_TO_IMPL).
LEGACY_ATTENTION_FLAGS = {
    "xformers_attention": "xformers",
    "sage_attention": "sage",
    "flex_attention": "flex_attention",
    "flash_attention": "flash_attention_2",
    "sdp_attention": "sdpa",
    "eager_attention": "eager",
}
# The attention backends axolotl knows (enums.CANONICAL_ATTN_IMPLS).
ATTENTION_BACKENDS = frozenset(
    {
        "eager",
        "sdpa",
        "flash_attention_2",
        "flash_attention_3",
        "flash_attention_4",
        "flash_attention_torch",
        "flex_attention",
        "xformers",
        "sage",
        "fp8",
    }
)
LORA_KERNELS = ("lora_mlp_kernel", "lora_qkv_kernel", "lora_o_kernel")
REFUSED = "axolotl refuses this: "  # how a restated refusal's message starts


def compute_capability(gpu: str | None) -> str | None:
    """`h100-80gb` → `sm_90`, as axolotl's gpu_capabilities() reads it from torch on the training machine,
    from the plan plugin's GPU table; None for no GPU, or one the table does not know or gives no
    compute capability."""
    if not gpu:
        return None
    from mft_recipes_plan.gpus import GpuTableError, load_gpu_table

    try:
        card = load_gpu_table().get(gpu)
    except GpuTableError:  # a broken user table: `plan` reports it; the rules that need the GPU stay quiet
        return None
    capability = card.capability() if card else None
    return f"sm_{capability[0]}{capability[1]}" if capability else None


class AxolotlConfig:
    """An axolotl config as axolotl's validators read it: `config["key"]` is None when the key is absent
    (their `data.get(key)`), and the properties give what axolotl's normalizing validators make of the
    config before the refusing ones read it. `gpus` and `compute_capability` are the capabilities
    `validate_config` gets from the training machine; None when `validate` is not told (--gpus, --gpu),
    and a rule that needs one then stays quiet."""

    def __init__(
        self,
        document: Mapping[str, Any],
        context: ValidationContext | None = None,
        parent: AxolotlConfig | None = None,
    ) -> None:
        self.document = document
        self.parent = parent  # the whole config, for a view of one of its dataset entries
        self.gpus = context.gpus if context else None
        self.compute_capability = compute_capability(context.gpu if context else None)

    def __getitem__(self, key: str) -> Any:
        return self.document.get(key)

    def section(self, key: str) -> dict[str, Any]:
        """A mapping-valued key (fsdp_config, trl, ...), {} when absent or not a mapping."""
        value = self.document.get(key)
        return value if isinstance(value, dict) else {}

    def fsdp(self, option: str) -> Any:
        """An fsdp_config option under either spelling: axolotl strips the deprecated `fsdp_` prefix
        (check_fsdp_config_kwargs_prefix) before its FSDP validators read the section."""
        section = self.section("fsdp_config")
        return section.get(option, section.get(f"fsdp_{option}"))

    @property
    def uses_fsdp(self) -> bool:
        return bool(self["fsdp"] or self["fsdp_config"])

    @property
    def fsdp_version(self) -> Any:
        """The FSDP version after check_fsdp_version_in_fsdp_config: the top-level key, else the one in
        fsdp_config, else 1 when there is an fsdp_config (None without FSDP)."""
        if self["fsdp_version"]:
            return self["fsdp_version"]
        section = self.section("fsdp_config")
        if not section:
            return None
        return section.get("version") or section.get("fsdp_version") or 1

    @property
    def attn_implementation(self) -> Any:
        """The backend after normalize_attn_implementation: the key, else the first legacy flag set."""
        if self["attn_implementation"]:
            return self["attn_implementation"]
        flags = (backend for flag, backend in LEGACY_ATTENTION_FLAGS.items() if self[flag])
        return next(flags, "flash_attention_2" if self["gemma4_hybrid_attn_impl"] else None)

    @property
    def lora(self) -> bool:
        """Whether the adapter is LoRA (`lora` or `qlora`)."""
        return self["adapter"] in ("lora", "qlora")

    @property
    def quantized(self) -> bool:
        """Whether bitsandbytes loads the base in 8 or 4 bits."""
        return bool(self["load_in_8bit"] or self["load_in_4bit"])

    @property
    def use_reentrant(self) -> Any:
        return self.section("gradient_checkpointing_kwargs").get("use_reentrant")

    @property
    def attention_backend(self) -> Any:
        """The backend of attn_implementation without a hub kernel's `@revision` or `:kernel_name`
        (enums.attn_impl_base)."""
        backend = self.attn_implementation
        return backend.split(":", 1)[0].split("@", 1)[0].strip() if isinstance(backend, str) else backend

    def capability_at_least(self, major: int) -> bool | None:
        """Whether the GPU's compute capability is `sm_<major>0` or newer; None when unknown."""
        cc = self.compute_capability
        return None if cc is None else int(cc.removeprefix("sm_")) >= major * 10

    @property
    def lora_kernels(self) -> list[str]:
        """The fused LoRA kernels the config turns on itself (axolotl turns them on by default only
        where none of the kernel refusals applies: check_auto_enable_lora_kernels)."""
        return [kernel for kernel in LORA_KERNELS if self[kernel]]

    def lists(self, integration: str) -> bool:
        """Whether `plugins:` names a plugin of the integration (`axolotl.integrations.liger`)."""
        plugins = self["plugins"]
        return isinstance(plugins, list) and any(str(name).startswith(f"{integration}.") for name in plugins)


@dataclass(frozen=True)
class Refusal:
    """One refusal of axolotl's. `validator` is the function in axolotl's source that raises it; `keys`
    are the keys it is about (the problem points at the first one the config sets); `when` says whether
    axolotl refuses the config (a mapping it returns fills the fields of the message that are not keys of
    the config); `says` is axolotl's message, with `{key}` fields filled from the config. A rule of a
    plugin's argument model applies only when the config lists the plugin (`plugin`, the integration's
    module); a rule `per_dataset` is judged on each entry of `datasets` (its `parent` is the config)."""

    validator: str
    keys: tuple[str, ...]
    says: str
    when: Callable[[AxolotlConfig], Any]
    plugin: str | None = None
    per_dataset: bool = False
    code: str | None = None

    def problems(self, config: AxolotlConfig) -> Iterator[Problem]:
        if self.plugin and not config.lists(self.plugin):
            return
        if not self.per_dataset:
            yield from self._judge(config, ())
            return
        datasets = config["datasets"]
        for index, entry in enumerate(datasets if isinstance(datasets, list) else []):
            if isinstance(entry, dict):
                yield from self._judge(AxolotlConfig(entry, parent=config), ("datasets", index))

    def _judge(self, config: AxolotlConfig, prefix: tuple[str | int, ...]) -> Iterator[Problem]:
        found = self.when(config)
        if not found:
            return
        fields = _Fields(config, found if isinstance(found, Mapping) else {})
        yield Problem(
            REFUSED + self.says.format_map(fields),
            (*prefix, *self._path(config)),
            code=self.code or "axolotl-" + self.validator.strip("_").replace("_", "-"),
        )

    def _path(self, config: AxolotlConfig) -> tuple[str, ...]:
        def sets(path: tuple[str, ...]) -> bool:
            return (config.fsdp(path[1]) if path[0] == "fsdp_config" else config[path[0]]) is not None

        paths = [tuple(key.split(".")) for key in self.keys]
        return next((path for path in paths if sets(path)), paths[0])


def given(*keys: str, any_value: bool = False) -> Callable[[AxolotlConfig], bool]:
    """The condition of the many refusals of one key or a combination: the config sets every one of `keys`
    to a true value (as axolotl's `data.get(key)` tests it), or with `any_value` to anything but null."""
    if any_value:
        return lambda config: all(config[key] is not None for key in keys)
    return lambda config: all(config[key] for key in keys)


class _Fields(dict[str, Any]):
    """The values a message names: what `when` returned, else the config's own keys."""

    def __init__(self, config: AxolotlConfig, found: Mapping[str, Any]) -> None:
        super().__init__(found)
        self.config = config

    def __missing__(self, key: str) -> Any:
        return self.config[key]


def refusal_problems(
    document: dict[str, Any], context: ValidationContext, refusals: tuple[Refusal, ...]
) -> Iterator[Problem]:
    """Every refusal of `refusals` that axolotl would make of the document."""
    config = AxolotlConfig(document, context)
    for refusal in refusals:
        yield from refusal.problems(config)
