"""mft-recipes: recipes for fine-tuning Mistral models with trainers that already exist.

This module is the API for plugins, the one thing a plugin imports (as `import llm` is for llm's):

    import mft_recipes

    @mft_recipes.hookimpl
    def register_validators(register: Callable[[mft_recipes.Validator], None]) -> None:
        register(mft_recipes.Validator("my-check", ("axolotl",), check))

It holds `hookimpl`, every value a hook registers (Architecture, DocumentKind, Exporter, Generator,
Metric, ParameterSet, Recipe with its RecipeParameter and Hardware, Target, Validator) or is given (Registry,
RenderContext, RenderedDocument, ValidationContext, and the Problem a validator yields), and the CLI
helpers a plugin's commands use (`fail`, `print_json`, `recipe_or_fail`, the `InputFile` parameter type,
EXIT_INVALID and EXIT_USAGE).
The hooks themselves are documented in mft_recipes.hookspecs and docs/plugins.md.

Importing it loads the host (click, pluggy, jsonschema, PyYAML), which every command loads anyway;
nothing heavy (torch, transformers, ...) is imported here.
"""

__version__ = "0.1.0"  # before the imports below: the modules they load read it

from mft_recipes.architectures import Architecture
from mft_recipes.cli import EXIT_INVALID, EXIT_USAGE, InputFile, fail, print_json, recipe_or_fail
from mft_recipes.documents import DocumentKind
from mft_recipes.hookspecs import hookimpl
from mft_recipes.host import Registry
from mft_recipes.problems import KeyPath, Problem
from mft_recipes.recipes import Hardware, ParameterSet, Recipe, RecipeParameter
from mft_recipes.render import Generator, RenderContext, RenderedDocument, Target
from mft_recipes.steps import Exporter, Metric
from mft_recipes.validation import ValidationContext, Validator

__all__ = [
    "EXIT_INVALID",
    "EXIT_USAGE",
    "Architecture",
    "DocumentKind",
    "Exporter",
    "Generator",
    "Hardware",
    "InputFile",
    "KeyPath",
    "Metric",
    "ParameterSet",
    "Problem",
    "Recipe",
    "RecipeParameter",
    "Registry",
    "RenderContext",
    "RenderedDocument",
    "Target",
    "ValidationContext",
    "Validator",
    "__version__",
    "fail",
    "hookimpl",
    "print_json",
    "recipe_or_fail",
]
