"""PPO's clipped value loss for the critic, a pure function of arrays.

    loss, metrics = clipped_value_loss(values, old_values, returns, mask, clip_eps=0.2)

The value-function clipping of the PPO implementations (Schulman et al. 2017's baselines,
TRL's `PPOTrainer` with `cliprange_value`): a new value prediction may move at most `clip_eps`
from the one the rollout used, and the loss takes the worse of the clipped and unclipped
errors, so the critic cannot profit from a large jump.
"""

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

    `returns` R are the GAE returns (`llm_jax.rl.gae`); `mask` is 1 on the completion's real
    tokens. Metrics: `value_loss` and `value_clipfrac` (share of tokens where the clipped error
    was the larger, TRL's `val/clipfrac_avg`).
    """
    values, old_values, returns = (x.astype(jnp.float32) for x in (values, old_values, returns))
    clipped = jnp.clip(values, old_values - clip_eps, old_values + clip_eps)
    unclipped_error = (values - returns) ** 2
    clipped_error = (clipped - returns) ** 2
    loss = 0.5 * masked_mean(jnp.maximum(unclipped_error, clipped_error), mask)
    clipfrac = masked_mean((clipped_error > unclipped_error).astype(jnp.float32), mask)
    return loss, {"value_loss": loss, "value_clipfrac": clipfrac}
