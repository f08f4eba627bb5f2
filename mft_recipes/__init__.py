"""mft-recipes: recipes for fine-tuning Mistral models with trainers that already exist."""

__version__ = "0.1.0"
