"""Held-out preference pairs, scored by a stage's function and summed up by its own loss.

    scores = score_pairs(fn, params, batches, put_batch)   # {"chosen": [N], "rejected": [N], ...}
    loss, metrics = bradley_terry_loss(scores["chosen"], scores["rejected"])

`fn(params, batch) -> {name: [B] array}` is jitted by the caller with replicated outputs and
must return the batch's `weights`; rows of weight 0 (the padding that fills the last batch)
are dropped, so the metrics are those of the pairs themselves, computed over all of them at
once rather than averaged batch by batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import jax
import numpy as np


def score_pairs(fn: Callable, params, batches: Iterable[dict], put_batch: Callable
                ) -> dict[str, np.ndarray]:
    """Every output of `fn` over every held-out batch, concatenated, padding rows dropped."""
    parts: dict[str, list[np.ndarray]] = {}
    for batch in batches:
        out = jax.device_get(fn(params, put_batch(batch)))
        keep = np.asarray(out["weights"]) > 0
        for name, value in out.items():
            parts.setdefault(name, []).append(np.asarray(value)[keep])
    return {name: np.concatenate(values) for name, values in parts.items()}


def prefixed(metrics: dict, prefix: str = "eval/") -> dict[str, float]:
    """Host floats under `prefix` (the loss's own metric names after it)."""
    return {f"{prefix}{k}": float(v) for k, v in metrics.items()}
