"""Turning next-token logits into a sampling distribution: temperature, top-k, top-p."""

from __future__ import annotations

import jax
import jax.numpy as jnp

NEG_INF = -1e30


def filter_logits(logits: jnp.ndarray, top_k: int = 0, top_p: float = 1.0) -> jnp.ndarray:
    """Logits with every token outside the top-k / nucleus set to -inf-ish.

    top-p keeps the smallest prefix of tokens (by probability) whose mass reaches `top_p`; the
    most likely token is always kept.
    """
    if top_k and top_k < logits.shape[-1]:
        kth = jax.lax.top_k(logits, top_k)[0][..., -1:]
        logits = jnp.where(logits < kth, NEG_INF, logits)
    if top_p < 1.0:
        sorted_logits = jnp.sort(logits, axis=-1)[..., ::-1]
        probs = jax.nn.softmax(sorted_logits, axis=-1)
        mass_before = jnp.cumsum(probs, axis=-1) - probs
        keep = mass_before < top_p
        threshold = jnp.min(jnp.where(keep, sorted_logits, jnp.inf), axis=-1, keepdims=True)
        logits = jnp.where(logits < threshold, NEG_INF, logits)
    return logits


def sample_tokens(logits: jnp.ndarray, rng: jax.Array, temperature: float, top_k: int,
                  top_p: float) -> jnp.ndarray:
    """One token id per row; greedy (argmax) when temperature == 0."""
    if temperature == 0.0:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    filtered = filter_logits(logits.astype(jnp.float32) / temperature, top_k, top_p)
    return jax.random.categorical(rng, filtered, axis=-1).astype(jnp.int32)
