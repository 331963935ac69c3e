"""Held-out preference pairs, scored by a pairwise stage and summed up by its own loss.

`scores(params, batch) -> (chosen, rejected)` is the stage's; rows of weight 0 (the padding
that fills the last batch) are dropped, so the metrics are those of the pairs themselves,
computed over all of them at once rather than averaged batch by batch.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence

import jax
import numpy as np

from llm_jax.sharding.mesh import replicated


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


def make_pair_evaluator(objective, batches: Sequence[dict], put_batch: Callable, mesh,
                        prefix: str = "eval/") -> Callable[[object], dict[str, float]]:
    """`evaluate(params)`: `objective.pair_loss` and its metrics over every held-out pair; a
    stage with a frozen reference (`objective.reference`) scores it once, on the first call."""

    @functools.partial(jax.jit, out_shardings=replicated(mesh))
    def score(params, batch):
        chosen, rejected = objective.scores(params, batch)
        return {"chosen": chosen, "rejected": rejected, "margin": batch["margin"],
                "weights": batch["weights"]}

    reference = functools.cache(lambda: score_pairs(score, objective.reference, batches,
                                                    put_batch))

    def evaluate(params) -> dict[str, float]:
        s = score_pairs(score, params, batches, put_batch)
        if objective.reference is not None:
            ref = reference()
            s.update(ref_chosen=ref["chosen"], ref_rejected=ref["rejected"])
        loss, metrics = objective.pair_loss(s)
        return {f"{prefix}{k}": float(v) for k, v in {"loss": loss, **metrics}.items()}

    return evaluate
