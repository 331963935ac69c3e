"""Rotary position embeddings, in the "rotate half" layout Hugging Face Llama checkpoints use.

Using the same layout as the checkpoints means q/k weights import without a permutation.
"""

from __future__ import annotations

import jax.numpy as jnp


def apply_rope(x: jnp.ndarray, positions: jnp.ndarray, theta: float) -> jnp.ndarray:
    """Rotate `x` [batch, seq, heads, head_dim] by angles from integer `positions` [batch, seq]."""
    head_dim = x.shape[-1]
    inv_freq = 1.0 / (theta ** (jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim))
    angles = positions.astype(jnp.float32)[..., None] * inv_freq  # [b, s, head_dim/2]
    angles = jnp.concatenate([angles, angles], axis=-1)[:, :, None, :]  # broadcast over heads
    cos, sin = jnp.cos(angles), jnp.sin(angles)
    xf = x.astype(jnp.float32)
    half = head_dim // 2
    rotated = jnp.concatenate([-xf[..., half:], xf[..., :half]], axis=-1)
    return (xf * cos + rotated * sin).astype(x.dtype)
