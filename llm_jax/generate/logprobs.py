"""`token_logprobs`: log p of each token given its prefix, shared by the sampler and trainers.

Both sides use `token_logprobs_from_logits` on raw logits (temperature 1, no top-k/top-p), so
policy, sampler and reference agree to float rounding; RL may ask both for the log-probs of
the tempered policy that sampled (`temperature`, as TRL)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from llm_jax.losses.lm import token_logprobs_from_logits
from llm_jax.models.transformer import positions_from_mask


def positions_from_segments(segment_ids: jnp.ndarray) -> jnp.ndarray:
    """Positions restarting at 0 wherever the segment id changes (packed documents are
    contiguous runs, as the packing pipeline writes them)."""
    idx = jnp.broadcast_to(jnp.arange(segment_ids.shape[-1], dtype=jnp.int32), segment_ids.shape)
    changed = jnp.concatenate([jnp.ones_like(segment_ids[..., :1], bool),
                               segment_ids[..., 1:] != segment_ids[..., :-1]], axis=-1)
    return idx - jax.lax.cummax(jnp.where(changed, idx, 0), axis=segment_ids.ndim - 1)


def token_logprobs(model: nn.Module, params, tokens: jnp.ndarray,
                   mask: jnp.ndarray | None = None, positions: jnp.ndarray | None = None,
                   segment_ids: jnp.ndarray | None = None) -> jnp.ndarray:
    """[batch, seq-1]: log p(tokens[:, t+1] | tokens[:, :t+1]) under `model`, in fp32.

    One document per row: give `mask` (1 = real token, one contiguous run). Packed rows: give
    `segment_ids` (0 = padding) and ideally `positions`. Targets that are padding or start
    another document get 0."""
    if segment_ids is None:
        segment_ids = (jnp.ones_like(tokens) if mask is None else mask).astype(jnp.int32)
        if positions is None:
            positions = positions_from_mask(segment_ids)
    segment_ids = segment_ids.astype(jnp.int32)
    if positions is None:
        positions = positions_from_segments(segment_ids)
    logits = model.apply({"params": params}, tokens, positions, segment_ids)
    logp = token_logprobs_from_logits(logits[:, :-1], tokens[:, 1:])
    same_doc = (segment_ids[:, 1:] == segment_ids[:, :-1]) & (segment_ids[:, 1:] > 0)
    if mask is not None:
        same_doc &= mask[:, 1:] > 0
    return jnp.where(same_doc, logp, 0.0)


def completion_logprobs(model: nn.Module, params, tokens: jnp.ndarray, mask: jnp.ndarray,
                        prompt_len: int, *, with_entropy: bool = False,
                        temperature: float = 1.0) -> tuple[jnp.ndarray, jnp.ndarray | None]:
    """(logp, entropy) [batch, T] of the completion tokens `tokens[:, prompt_len:]` under the
    model's distribution at `temperature` (logits / temperature).

    Rows are a left-padded prompt of `prompt_len` slots then T completion slots; `mask` is 1 on
    every real token. Padding entries are left as computed; callers mask them."""
    mask = mask.astype(jnp.int32)
    variables = {"params": params}
    hidden = model.apply(variables, tokens, positions_from_mask(mask), mask, features_only=True)
    # The LM head only where a completion token is predicted: the prompt's positions would
    # cost a [prompt_len, vocab] matmul per row (and its backward) for logits nobody reads.
    hidden = hidden[:, prompt_len - 1:-1]
    logits = model.apply(variables, hidden, method="logits").astype(jnp.float32)
    if temperature != 1.0:
        logits = logits / temperature
    logp = token_logprobs_from_logits(logits, tokens[:, prompt_len:])
    if not with_entropy:
        return logp, None
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    entropy = -(jnp.exp(log_probs) * log_probs).sum(-1)
    return logp, entropy
