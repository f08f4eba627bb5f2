"""`python -m mft_recipes` is the same as the `mft-recipes` command."""

from mft_recipes.cli import main

main()
