"""Scalar heads on the transformer's final features (`Transformer(..., features_only=True)`).

The reward head reads the last real token (padding side never matters); the value head gives
one scalar per token. Both return fp32, like the LM head's logits."""

from __future__ import annotations

import jax.numpy as jnp
from flax import linen as nn

from llm_jax.nn.linear import Linear


def last_real_index(mask: jnp.ndarray) -> jnp.ndarray:
    """Index [B] of the last real position per row; `mask` [B, T] is a 0/1 mask or segment
    ids (0 = padding). A row with no real token gives 0."""
    real = mask > 0
    length = mask.shape[1]
    from_end = jnp.argmax(real[:, ::-1], axis=1)  # first real position counted from the end
    return jnp.where(real.any(axis=1), length - 1 - from_end, 0)


def _projection(d_model: int, init_std: float, dtype, param_dtype, name: str) -> Linear:
    return Linear((d_model,), (1,), ("embed",), (None,), use_bias=True, std=init_std,
                  dtype=dtype, param_dtype=param_dtype, name=name)


class RewardHead(nn.Module):
    """features [B, T, D] + mask [B, T] → reward [B], read at each row's last real token."""

    d_model: int
    init_std: float = 0.02
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, features: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
        last = last_real_index(mask)
        picked = jnp.take_along_axis(features, last[:, None, None], axis=1)[:, 0]  # [B, D]
        score = _projection(self.d_model, self.init_std, self.dtype, self.param_dtype, "score")
        return score(picked)[..., 0].astype(jnp.float32)


class ValueHead(nn.Module):
    """features [B, T, D] → values [B, T], one scalar per token (pads included: mask them)."""

    d_model: int
    init_std: float = 0.02
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, features: jnp.ndarray) -> jnp.ndarray:
        value = _projection(self.d_model, self.init_std, self.dtype, self.param_dtype, "value")
        values = value(features)[..., 0].astype(jnp.float32)
        return nn.with_logical_constraint(values, ("act_batch", "act_seq"))
