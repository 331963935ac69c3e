"""The one policy-gradient loss: clipped importance ratio, KL to a reference, aggregation.

    loss, weight, metrics = policy_loss(logp, old_logp, advantages, mask, cfg, ref_logp=ref)

Per completion token t of sample i (PPO, Schulman et al. 2017; GRPO, Shao et al. 2024):

    ratio = exp(logp - old_logp)
    l_t   = -min(ratio · A_i, clip(ratio, 1 - eps_low, 1 + eps_high) · A_i) + β · KL_t

`eps_high > eps_low` is DAPO's "clip-higher" (Yu et al. 2025). KL to the frozen reference:
`k1` = logp - ref (its expectation is the KL; unbiased, can be negative per token) or `k3` =
exp(ref - logp) - (ref - logp) - 1 (Schulman's low-variance, always ≥ 0 estimator, GRPO's).

Aggregation over the batch (the names TRL uses where it has one):
* `token_mean`: Σ l / Σ mask over the whole batch; every token weighs the same (DAPO, TRL's
  "dapo"/"bnpo").
* `sequence_mean`: mean over samples of each sample's token mean (the original GRPO); a long
  completion's tokens weigh less.
* `dr_grpo`: Σ l / (samples · max_completion_length), a constant denominator, so there is no
  length bias at all (Dr. GRPO, Liu et al. 2025).

Each mode also returns a `weight` (tokens, or samples) such that micro-batches accumulated by
the train step with that weight equal one pass over the whole batch. All inputs are [B, T]
aligned with the completion tokens; `mask` is 1 on tokens the policy sampled (prompt, padding
and forced tool output are 0).
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

AGGREGATIONS = ("token_mean", "sequence_mean", "dr_grpo")
KL_ESTIMATORS = ("k1", "k3")


@dataclasses.dataclass(frozen=True)
class PolicyLossConfig:
    eps_low: float = 0.2
    eps_high: float = 0.2
    kl_coef: float = 0.0  # β; 0 = no reference model at all
    kl_estimator: str = "k3"
    aggregation: str = "token_mean"
    max_completion_length: int = 0  # the dr_grpo constant (the rollout's token budget)

    def __post_init__(self):
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation={self.aggregation!r}; choose from {AGGREGATIONS}")
        if self.kl_estimator not in KL_ESTIMATORS:
            raise ValueError(f"kl_estimator={self.kl_estimator!r}; choose from {KL_ESTIMATORS}")
        if not (0 <= self.eps_low < 1 and self.eps_high >= 0):
            raise ValueError(f"need 0 <= eps_low < 1 and eps_high >= 0, got {self}")
        if self.aggregation == "dr_grpo" and self.max_completion_length < 1:
            raise ValueError("dr_grpo aggregation needs max_completion_length >= 1")


def kl_estimate(logp: jnp.ndarray, ref_logp: jnp.ndarray, estimator: str = "k3") -> jnp.ndarray:
    """Per-token estimate of KL(policy ‖ reference) from the sampled tokens' log-probs."""
    log_ratio = ref_logp - logp
    if estimator == "k1":
        return -log_ratio
    if estimator == "k3":
        return jnp.exp(log_ratio) - log_ratio - 1.0
    raise ValueError(f"kl estimator {estimator!r}; choose from {KL_ESTIMATORS}")


def aggregation_weight(mask, mode: str):
    """What `aggregate` divides by (before Dr. GRPO's length constant): tokens, rows with a
    token, or rows. Works on numpy and jax arrays alike."""
    if mode == "token_mean":
        return mask.sum()
    if mode == "sequence_mean":
        return (mask.sum(axis=1) > 0).sum()
    if mode == "dr_grpo":
        return mask.shape[0]
    raise ValueError(f"aggregation {mode!r}; choose from {AGGREGATIONS}")


def aggregate(values: jnp.ndarray, mask: jnp.ndarray, mode: str,
              max_completion_length: int = 0, weight: jnp.ndarray | None = None
              ) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(scalar, weight): per-token `values` [B, T] reduced over the mask as `mode` says.

    `weight` overrides the batch's own `aggregation_weight`: the learner passes the weight of
    a larger batch it has dropped gradient-free rows from, so the loss is the larger batch's."""
    mask = mask.astype(jnp.float32)
    if weight is None:
        weight = aggregation_weight(mask, mode)
    weight = jnp.asarray(weight, jnp.float32)
    total = (values * mask).sum()
    if mode == "token_mean":
        return total / jnp.maximum(weight, 1.0), weight
    if mode == "sequence_mean":
        row_tokens = mask.sum(axis=1)
        row_means = (values * mask).sum(axis=1) / jnp.maximum(row_tokens, 1.0)
        return (row_means * (row_tokens > 0)).sum() / jnp.maximum(weight, 1.0), weight
    if mode == "dr_grpo":
        return total / (weight * max_completion_length), weight
    raise ValueError(f"aggregation {mode!r}; choose from {AGGREGATIONS}")


def masked_mean(values: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
    mask = mask.astype(jnp.float32)
    return (values * mask).sum() / jnp.maximum(mask.sum(), 1.0)


def policy_loss(logp: jnp.ndarray, old_logp: jnp.ndarray, advantages: jnp.ndarray,
                mask: jnp.ndarray, cfg: PolicyLossConfig, *,
                ref_logp: jnp.ndarray | None = None, weight: jnp.ndarray | None = None
                ) -> tuple[jnp.ndarray, jnp.ndarray, dict[str, jnp.ndarray]]:
    """(loss, weight, metrics) of the clipped surrogate (+ β·KL) over one batch.

    `advantages` is [B] (one per sample) or [B, T]; `weight` as in `aggregate`. Metrics use
    TRL's names: `clip_ratio/low_mean` (share of tokens clipped at 1 - eps_low with A < 0),
    `clip_ratio/high_mean`, `clip_ratio/region_mean` (either), `kl`, plus the ratio's mean,
    min and max.
    """
    adv = advantages[:, None] if advantages.ndim == 1 else advantages
    ratio = jnp.exp(logp - old_logp)
    clipped_ratio = jnp.clip(ratio, 1.0 - cfg.eps_low, 1.0 + cfg.eps_high)
    per_token = -jnp.minimum(ratio * adv, clipped_ratio * adv)
    metrics: dict[str, jnp.ndarray] = {}
    if cfg.kl_coef:
        if ref_logp is None:
            raise ValueError("kl_coef > 0 needs the reference log-probs")
        kl = kl_estimate(logp, ref_logp, cfg.kl_estimator)
        per_token = per_token + cfg.kl_coef * kl
        metrics["kl"] = masked_mean(kl, mask)
    loss, weight = aggregate(per_token, mask, cfg.aggregation, cfg.max_completion_length,
                             weight)

    low = (ratio < 1.0 - cfg.eps_low) & (adv < 0)
    high = (ratio > 1.0 + cfg.eps_high) & (adv > 0)
    on = mask > 0
    metrics.update({
        "clip_ratio/low_mean": masked_mean(low, mask),
        "clip_ratio/high_mean": masked_mean(high, mask),
        "clip_ratio/region_mean": masked_mean(low | high, mask),
        "ratio_mean": masked_mean(ratio, mask),
        # 1.0 for a batch without tokens, so a min/max is never ±inf in the logs
        "ratio_min": jnp.where(on.any(), jnp.where(on, ratio, jnp.inf).min(), 1.0),
        "ratio_max": jnp.where(on.any(), jnp.where(on, ratio, -jnp.inf).max(), 1.0),
    })
    return loss, weight, metrics
