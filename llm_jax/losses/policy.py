"""The one policy-gradient loss: clipped importance ratio, KL to a reference, aggregation.

    loss, weight, metrics = policy_loss(logp, old_logp, advantages, mask, cfg, ref_logp=ref)

Per token (PPO, Schulman et al. 2017; GRPO, Shao et al. 2024): `l_t = -min(ratio · A,
clip(ratio, 1 - eps_low, 1 + eps_high) · A) + β · KL_t`. `eps_high > eps_low` is DAPO's
clip-higher; `importance="sequence"` is GSPO (one ratio per completion, `seq_eps_*`).

KL (r = π_ref / π): k1 has zero expected gradient as a loss, so it is not offered (PPO pays it
in rewards); k3 = r - log r - 1 (GRPO); k3 · sg(π / π_old) (`kl_bias_correction`, TRL).
Aggregation: `token_mean` (DAPO, TRL "dapo"/"bnpo"), `sequence_mean` (GRPO), `dr_grpo`
(Σ l / (samples · max length)); the returned `weight` makes accumulation exact."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

AGGREGATIONS = ("token_mean", "sequence_mean", "dr_grpo")
IMPORTANCE_LEVELS = ("token", "sequence")


@dataclasses.dataclass(frozen=True)
class PolicyLossConfig:
    eps_low: float = 0.2
    eps_high: float = 0.2
    kl_coef: float = 0.0  # β; 0 = no reference model at all
    kl_bias_correction: bool = False  # k3 × sg(π/π_old): the reverse KL's unbiased gradient
    aggregation: str = "token_mean"
    max_completion_length: int = 0  # the dr_grpo constant (the rollout's token budget)
    importance: str = "token"  # token (PPO/GRPO) | sequence (GSPO)
    seq_eps_low: float = 3e-4  # GSPO's clip range (its paper's values)
    seq_eps_high: float = 4e-4

    def __post_init__(self):
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation={self.aggregation!r}; choose from {AGGREGATIONS}")
        if self.importance not in IMPORTANCE_LEVELS:
            raise ValueError(f"importance={self.importance!r}; choose from "
                             f"{IMPORTANCE_LEVELS}")
        if not (0 <= self.eps_low < 1 and self.eps_high >= 0):
            raise ValueError(f"need 0 <= eps_low < 1 and eps_high >= 0, got {self}")
        if not (0 <= self.seq_eps_low < 1 and self.seq_eps_high >= 0):
            raise ValueError(f"need 0 <= seq_eps_low < 1 and seq_eps_high >= 0, got {self}")
        if self.aggregation == "dr_grpo" and self.max_completion_length < 1:
            raise ValueError("dr_grpo aggregation needs max_completion_length >= 1")

    @property
    def clip_range(self) -> tuple[float, float]:
        """(eps_low, eps_high) of the ratio in use: the token's or GSPO's sequence range."""
        if self.importance == "sequence":
            return self.seq_eps_low, self.seq_eps_high
        return self.eps_low, self.eps_high


def kl_estimate(logp: jnp.ndarray, ref_logp: jnp.ndarray) -> jnp.ndarray:
    """Per-token k3 estimate of KL(policy ‖ reference) from the sampled tokens' log-probs."""
    log_ratio = ref_logp - logp
    return jnp.exp(log_ratio) - log_ratio - 1.0


def log_importance(logp: jnp.ndarray, old_logp: jnp.ndarray, mask: jnp.ndarray,
                   level: str = "token") -> jnp.ndarray:
    """[B, T] log π/π_old per token, or (GSPO) each completion's token-mean log-ratio on
    every one of its tokens."""
    log_ratio = logp - old_logp
    if level == "token":
        return log_ratio
    mask = mask.astype(jnp.float32)
    per_sequence = (log_ratio * mask).sum(1) / jnp.maximum(mask.sum(1), 1.0)
    return jnp.broadcast_to(per_sequence[:, None], log_ratio.shape)


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
    """(scalar, weight) of `values` [B, T] reduced over the mask; `weight` overrides the batch's."""
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
    """(loss, weight, metrics) of the clipped surrogate (+ β·KL); `advantages` [B] or [B, T].

    Metrics use TRL's names (`clip_ratio/low_mean`, `/high_mean`, `/region_mean`, `kl`)."""
    adv = advantages[:, None] if advantages.ndim == 1 else advantages
    eps_low, eps_high = cfg.clip_range
    ratio = jnp.exp(log_importance(logp, old_logp, mask, cfg.importance))
    clipped_ratio = jnp.clip(ratio, 1.0 - eps_low, 1.0 + eps_high)
    per_token = -jnp.minimum(ratio * adv, clipped_ratio * adv)
    metrics: dict[str, jnp.ndarray] = {}
    if cfg.kl_coef:
        if ref_logp is None:
            raise ValueError("kl_coef > 0 needs the reference log-probs")
        kl = kl_estimate(logp, ref_logp)
        metrics["kl"] = masked_mean(kl, mask)
        if cfg.kl_bias_correction:  # the token's own ratio, detached, whatever `importance`
            kl = kl * jnp.exp(jax.lax.stop_gradient(logp - old_logp))
        per_token = per_token + cfg.kl_coef * kl
    loss, weight = aggregate(per_token, mask, cfg.aggregation, cfg.max_completion_length,
                             weight)

    low = (ratio < 1.0 - eps_low) & (adv < 0)
    high = (ratio > 1.0 + eps_high) & (adv > 0)
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
