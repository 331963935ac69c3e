"""`token_logprobs`: log p of each token given its prefix, shared by the sampler and trainers.

RL losses compare the policy's log-probs with the sampler's and the reference model's; all
three come from this function's definition, so they agree to float precision.
"""

from __future__ import annotations

import jax.numpy as jnp

from llm_jax.losses.lm import token_logprobs_from_logits


def positions_from_mask(mask: jnp.ndarray) -> jnp.ndarray:
    """Positions counting only real tokens (left padding does not shift a row's positions)."""
    return jnp.maximum(jnp.cumsum(mask.astype(jnp.int32), axis=-1) - 1, 0)


def token_logprobs(model, params, tokens: jnp.ndarray, mask: jnp.ndarray | None = None
                   ) -> jnp.ndarray:
    """[batch, seq-1]: log p(tokens[:, t+1] | tokens[:, :t+1]); `mask` marks real tokens
    (0 = padding anywhere in the row). Padding positions get meaningless values: mask them."""
    if mask is None:
        mask = jnp.ones_like(tokens)
    mask = mask.astype(jnp.int32)
    logits = model.apply({"params": params}, tokens, positions_from_mask(mask), mask)
    return token_logprobs_from_logits(logits[:, :-1], tokens[:, 1:])
