"""Next-token cross-entropy with a token mask (pretraining, SFT, rejection-sampling FT)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import jax.numpy as jnp
import optax


def token_logprobs_from_logits(logits: jnp.ndarray, targets: jnp.ndarray) -> jnp.ndarray:
    """log p(target) per position, [batch, seq], fp32 (optax's CE: ~30% faster on CPU)."""
    return -optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), targets)


def masked_cross_entropy(logits: jnp.ndarray, targets: jnp.ndarray,
                         mask: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Mean negative log-likelihood over positions where `mask` is 1, and the token count."""
    nll = -token_logprobs_from_logits(logits, targets)
    mask = mask.astype(jnp.float32)
    n_tokens = mask.sum()
    return (nll * mask).sum() / jnp.maximum(n_tokens, 1.0), n_tokens


def loss_mask(batch: Mapping[str, jnp.ndarray]) -> jnp.ndarray:
    """The batch's explicit `loss_mask`, else every non-padding position (segment id > 0)."""
    if "loss_mask" in batch:
        return batch["loss_mask"]
    return batch["segment_ids"] > 0


def make_lm_loss(apply_fn: Callable) -> Callable:
    """`loss_fn(params, batch, rng) -> (loss, aux)`; `aux["weight"]` is the token count."""

    def loss_fn(params, batch, rng):
        del rng  # deterministic forward pass (no dropout)
        logits = apply_fn(params, batch["inputs"], batch.get("positions"),
                          batch.get("segment_ids"))
        loss, n_tokens = masked_cross_entropy(logits, batch["targets"], loss_mask(batch))
        return loss, {"weight": n_tokens}

    return loss_fn
