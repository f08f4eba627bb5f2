"""Built-in plugin mft_recipes_vllm (being written)."""
