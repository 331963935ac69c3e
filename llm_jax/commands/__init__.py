"""Subcommands of `llm-jax` beyond `train`: each module adds its parsers with `add_commands`."""
