"""Held-out language-model loss, perplexity and bits per byte over fixed batches.

Scores `loss_mask` tokens when present, else every non-padding token; bits per byte uses the
targets' UTF-8 bytes, so it compares across tokenizers."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from llm_jax.losses.lm import loss_mask, token_logprobs_from_logits


def make_lm_evaluator(apply_fn: Callable, batches: Sequence[dict], put_batch: Callable,
                      byte_lengths: np.ndarray, prefix: str = "eval_"
                      ) -> Callable[[object], dict[str, float]]:
    """`evaluate(params) -> {prefix+"loss", prefix+"ppl", prefix+"bpb"}`.

    `apply_fn(params, inputs, positions, segment_ids) -> logits`.
    """
    byte_table = jnp.asarray(byte_lengths, jnp.float32)

    @jax.jit
    def eval_step(params, batch):
        logits = apply_fn(params, batch["inputs"], batch["positions"], batch["segment_ids"])
        mask = loss_mask(batch).astype(jnp.float32)
        nll = -token_logprobs_from_logits(logits, batch["targets"]) * mask
        return jnp.stack([nll.sum(), mask.sum(), (byte_table[batch["targets"]] * mask).sum()])

    def evaluate(params) -> dict[str, float]:
        total = jnp.zeros(3)
        for batch in batches:
            total = total + eval_step(params, put_batch(batch))
        nll, n_tokens, n_bytes = (float(x) for x in jax.device_get(total))
        loss = nll / max(n_tokens, 1.0)
        return {f"{prefix}loss": loss, f"{prefix}ppl": math.exp(min(loss, 50.0)),
                f"{prefix}bpb": nll / math.log(2) / max(n_bytes, 1.0)}

    return evaluate
