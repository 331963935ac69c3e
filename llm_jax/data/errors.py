"""`DataError`: bad input data, always named by file and line (or file and field)."""

from llm_jax.errors import DataError

__all__ = ["DataError"]
