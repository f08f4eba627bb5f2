"""Built-in plugin mft_recipes_data (being written)."""
