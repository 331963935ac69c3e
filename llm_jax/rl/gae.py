"""Generalized Advantage Estimation (Schulman et al. 2016) over completion tokens, for PPO.

    advantages, returns = gae(rewards, values, mask, gamma=1.0, lam=0.95)    # all [B, T]
    δ_t = r_t + γ·V_{t+1} − V_t          A_t = δ_t + γλ·A_{t+1}          R_t = A_t + V_t

Computed backwards; masked positions (padding, forced tool output) get A = R = 0 and the
recursion carries across them. γ = 1, λ = 0.95 are TRL's PPO defaults."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def gae(rewards: jnp.ndarray, values: jnp.ndarray, mask: jnp.ndarray, *, gamma: float = 1.0,
        lam: float = 0.95) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(advantages, returns), each [B, T] float32, 0 where `mask` is 0; gradients stopped."""
    rewards, values = (jax.lax.stop_gradient(x).astype(jnp.float32) for x in (rewards, values))
    real = mask > 0

    def step(carry, xs):
        next_value, next_adv = carry
        r, v, m = xs
        delta = r + gamma * next_value - v
        adv = delta + gamma * lam * next_adv
        # A masked position leaves the carry untouched: it is skipped, not a zero step.
        carry = (jnp.where(m, v, next_value), jnp.where(m, adv, next_adv))
        return carry, jnp.where(m, adv, 0.0)

    zeros = jnp.zeros(rewards.shape[0], jnp.float32)
    # scan runs over time: move T to the front, and reverse so the scan goes backwards.
    _, advantages = jax.lax.scan(step, (zeros, zeros), (rewards.T, values.T, real.T),
                                 reverse=True)
    advantages = advantages.T
    returns = jnp.where(real, advantages + values, 0.0)
    return advantages, returns
