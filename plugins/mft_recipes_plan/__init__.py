"""Built-in plugin mft_recipes_plan (being written)."""
