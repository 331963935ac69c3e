"""Next-token cross-entropy with a token mask (pretraining, SFT, rejection-sampling FT)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp


def token_logprobs_from_logits(logits: jnp.ndarray, targets: jnp.ndarray) -> jnp.ndarray:
    """log p(target) per position, [batch, seq], computed in fp32.

    The target logit is picked with a one-hot product rather than a gather: XLA fuses it into
    the reduction, and its gradient avoids a scatter (measurably faster on CPU, never slower).
    """
    logits = logits.astype(jnp.float32)
    picked = jnp.sum(logits * jax.nn.one_hot(targets, logits.shape[-1], dtype=logits.dtype),
                     axis=-1)
    return picked - jax.nn.logsumexp(logits, axis=-1)


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
    """`loss_fn(params, batch, rng) -> (loss, aux)` for the train-step factory.

    `apply_fn(params, tokens, positions, segment_ids) -> logits`. `aux["weight"]` is the token
    count, so gradient accumulation weights micro-batches exactly like one big batch.
    """

    def loss_fn(params, batch, rng):
        del rng  # deterministic forward pass (no dropout)
        logits = apply_fn(params, batch["inputs"], batch.get("positions"),
                          batch.get("segment_ids"))
        loss, n_tokens = masked_cross_entropy(logits, batch["targets"], loss_mask(batch))
        return loss, {"weight": n_tokens}

    return loss_fn
