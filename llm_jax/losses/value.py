"""PPO's clipped value loss for the critic (TRL's `cliprange_value`), a pure function of arrays.

    loss, metrics = clipped_value_loss(values, old_values, returns, mask, clip_eps=0.2)"""

from __future__ import annotations

import jax.numpy as jnp


def masked_mean(x: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
    """Mean of `x` where `mask` is 1 (0, never NaN, when nothing is masked in)."""
    mask = mask.astype(jnp.float32)
    return (x * mask).sum() / jnp.maximum(mask.sum(), 1.0)


def clipped_value_loss(values: jnp.ndarray, old_values: jnp.ndarray, returns: jnp.ndarray,
                       mask: jnp.ndarray, clip_eps: float = 0.2
                       ) -> tuple[jnp.ndarray, dict[str, jnp.ndarray]]:
    """0.5·masked mean of max((V − R)², (clip(V, V_old − ε, V_old + ε) − R)²), all [B, T].

    Metrics: `value_loss`, `value_clipfrac` (TRL's `val/clipfrac_avg`)."""
    values, old_values, returns = (x.astype(jnp.float32) for x in (values, old_values, returns))
    clipped = jnp.clip(values, old_values - clip_eps, old_values + clip_eps)
    unclipped_error = (values - returns) ** 2
    clipped_error = (clipped - returns) ** 2
    loss = 0.5 * masked_mean(jnp.maximum(unclipped_error, clipped_error), mask)
    clipfrac = masked_mean((clipped_error > unclipped_error).astype(jnp.float32), mask)
    return loss, {"value_loss": loss, "value_clipfrac": clipfrac}
