"""mft-recipes: recipes for fine-tuning Mistral models with trainers that already exist.

This module is the API for plugins, the one thing a plugin imports (as `import llm` is for llm's):

    import mft_recipes

    @mft_recipes.hookimpl
    def register_validators(register: Callable[[mft_recipes.Validator], None]) -> None:
        register(mft_recipes.Validator("my-check", ("axolotl",), check))

The built-in plugins import nothing else of mft-recipes either (`nox -s lint` holds them to it with
import-linter), so what they use is here, typed:

- `hookimpl`, and every value a hook registers (Architecture, DocumentKind, Exporter, Generator,
  Metric, ParameterSet, Recipe with its RecipeParameter, Hardware and CategoryPath, Target, Validator) or is given (Architectures,
  RenderContext, RenderedDocument, ValidationContext, and the Problem a validator yields, with its
  KeyPath and `format_path`).
- For a plugin's commands: what this process's plugins registered (`get_architectures`, `get_recipes`,
  `get_metrics`, `recipe_or_fail`, `render_document`); hooks are given what they need instead. The CLI
  helpers: `fail`, `print_json`, `plural`, `rich_console`, `parse_overrides` (KEY=VALUE words), the
  `InputFile` parameter type, EXIT_INVALID and EXIT_USAGE, and the errors ParameterError and
  RenderError.
- Writing outputs so that nothing is half-written: `atomic_writer`, `write_text_atomic`, and the
  messages `why_unwritable` and `why_write_failed`.
- JSON Schemas: `load_schema`, `check_against_schema`; `packaged_dir`, the folders (recipes/, schemas/)
  mft-recipes ships; `placeholder`, the value `plan` renders a required parameter with before the data
  exists. Documents: `check_document` (a document validated as a kind, as `validate` does) and
  `format_document` (a rendered document as `render` prints it).
- Launching on several nodes: a target's `cluster_launch` takes a `LaunchRequest` (the rendered recipe, its
  `Cluster`, the bundle's folder) and returns a `TrainingLaunch` (its `BundleFile`s, accelerate keys,
  per-node command and `SharedPath`s), which `mft-recipes launch` wraps in a scheduler's files;
  `reads_from_disk`, whether a trainer reads a path from disk (so every node needs it) or the hub.

The hooks themselves are documented in mft_recipes.hookspecs and docs/plugins.md.

Importing it loads the host (click, pluggy, jsonschema, PyYAML), which every command loads anyway;
nothing heavy (torch, transformers, ...) is imported here.
"""

__version__ = "0.1.0"  # before the imports below: the modules they load read it

from mft_recipes.architectures import Architecture, Architectures
from mft_recipes.cli import (
    EXIT_INVALID,
    EXIT_USAGE,
    InputFile,
    check_document,
    fail,
    format_document,
    get_architectures,
    get_metrics,
    get_recipes,
    plural,
    print_json,
    recipe_or_fail,
    render_document,
    rich_console,
)
from mft_recipes.documents import DocumentKind
from mft_recipes.hookspecs import hookimpl
from mft_recipes.launching import (
    BundleFile,
    Cluster,
    LaunchRequest,
    SharedPath,
    TrainingLaunch,
    reads_from_disk,
)
from mft_recipes.output import atomic_writer, why_unwritable, why_write_failed, write_text_atomic
from mft_recipes.problems import KeyPath, Problem, format_path
from mft_recipes.recipes import (
    CategoryPath,
    Hardware,
    ParameterError,
    ParameterSet,
    Recipe,
    RecipeParameter,
    parse_overrides,
)
from mft_recipes.render import Generator, RenderContext, RenderedDocument, RenderError, Target, placeholder
from mft_recipes.resources import packaged_dir
from mft_recipes.schemas import check_against_schema, load_schema
from mft_recipes.steps import Exporter, Metric
from mft_recipes.validation import ValidationContext, Validator

__all__ = [
    "EXIT_INVALID",
    "EXIT_USAGE",
    "Architecture",
    "Architectures",
    "BundleFile",
    "CategoryPath",
    "Cluster",
    "DocumentKind",
    "Exporter",
    "Generator",
    "Hardware",
    "InputFile",
    "KeyPath",
    "LaunchRequest",
    "Metric",
    "ParameterError",
    "ParameterSet",
    "Problem",
    "Recipe",
    "RecipeParameter",
    "RenderContext",
    "RenderError",
    "RenderedDocument",
    "SharedPath",
    "Target",
    "TrainingLaunch",
    "ValidationContext",
    "Validator",
    "__version__",
    "atomic_writer",
    "check_against_schema",
    "check_document",
    "fail",
    "format_document",
    "format_path",
    "get_architectures",
    "get_metrics",
    "get_recipes",
    "hookimpl",
    "load_schema",
    "packaged_dir",
    "parse_overrides",
    "placeholder",
    "plural",
    "print_json",
    "reads_from_disk",
    "recipe_or_fail",
    "render_document",
    "rich_console",
    "why_unwritable",
    "why_write_failed",
    "write_text_atomic",
]
