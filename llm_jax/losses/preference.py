"""Preference losses: the reward model's Bradley-Terry loss and DPO, pure functions of arrays.

    loss, metrics = bradley_terry_loss(r_chosen, r_rejected, margin=m, center_coef=0.01)
    loss, metrics = dpo_loss(pi_c, pi_r, ref_c, ref_r, beta=0.1, label_smoothing=0.0)

TRL's conventions and metric names. Optional `weights` [B] (0 = padding row) restrict means to
real pairs; no real pair gives 0, never NaN."""

from __future__ import annotations

import jax
import jax.numpy as jnp

Metrics = dict[str, jnp.ndarray]


def _weights(like: jnp.ndarray, weights: jnp.ndarray | None) -> jnp.ndarray:
    return jnp.ones_like(like, jnp.float32) if weights is None else weights.astype(jnp.float32)


def _mean(x: jnp.ndarray, w: jnp.ndarray) -> jnp.ndarray:
    return (x * w).sum() / jnp.maximum(w.sum(), 1.0)


def sequence_logprobs(token_logps: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
    """Σ_t log p(token_t) over the reply: `token_logps`, `mask` [B, T] → [B] (sums, as DPO)."""
    return (token_logps.astype(jnp.float32) * mask.astype(jnp.float32)).sum(axis=-1)


def bradley_terry_loss(chosen_rewards: jnp.ndarray, rejected_rewards: jnp.ndarray, *,
                       margin: jnp.ndarray | float | None = None, center_coef: float = 0.0,
                       weights: jnp.ndarray | None = None) -> tuple[jnp.ndarray, Metrics]:
    """Reward-model loss: mean of −log σ(r_c − r_r − margin) + center_coef·mean((r_c + r_r)²).

    Bradley-Terry as InstructGPT and TRL's `RewardTrainer`; `margin` as Llama 2; centering as
    Eisenstein et al. 2023 (TRL's `center_rewards_coefficient`). Metrics: `accuracy` (ties wrong),
    `margin`, `mean_reward`, `reward_std`, `min_reward`, `max_reward`."""
    chosen = chosen_rewards.astype(jnp.float32)
    rejected = rejected_rewards.astype(jnp.float32)
    w = _weights(chosen, weights)
    diff = chosen - rejected
    target = diff if margin is None else diff - jnp.asarray(margin, jnp.float32)
    loss = _mean(-jax.nn.log_sigmoid(target), w)
    if center_coef:
        loss = loss + center_coef * _mean((chosen + rejected) ** 2, w)
    both, w2 = jnp.concatenate([chosen, rejected]), jnp.concatenate([w, w])
    mean = _mean(both, w2)
    real = w2 > 0
    metrics = {
        "accuracy": _mean((diff > 0).astype(jnp.float32), w),
        "margin": _mean(diff, w),
        "mean_reward": mean,
        "reward_std": jnp.sqrt(_mean((both - mean) ** 2, w2)),
        "min_reward": jnp.where(real.any(), jnp.min(jnp.where(real, both, jnp.inf)), 0.0),
        "max_reward": jnp.where(real.any(), jnp.max(jnp.where(real, both, -jnp.inf)), 0.0),
    }
    return loss, metrics


def dpo_loss(policy_chosen_logps: jnp.ndarray, policy_rejected_logps: jnp.ndarray,
             ref_chosen_logps: jnp.ndarray, ref_rejected_logps: jnp.ndarray, *,
             beta: float = 0.1, label_smoothing: float = 0.0,
             weights: jnp.ndarray | None = None) -> tuple[jnp.ndarray, Metrics]:
    """Direct Preference Optimization (Rafailov et al. 2023), the sigmoid loss:

        Δ = (π_c − ref_c) − (π_r − ref_r)         (sequence log-probs, [B] each)
        loss = mean[ −(1 − ε)·log σ(β·Δ) − ε·log σ(−β·Δ) ]

    ε > 0 is cDPO (Mitchell 2023); ε = 0, β = 0.1 are TRL's defaults. Metrics (TRL's names):
    `rewards/chosen`, `rewards/rejected`, `rewards/accuracies`, `rewards/margins`, `logps/*`."""
    pi_c, pi_r = (x.astype(jnp.float32) for x in (policy_chosen_logps, policy_rejected_logps))
    ref_c, ref_r = (x.astype(jnp.float32) for x in (ref_chosen_logps, ref_rejected_logps))
    w = _weights(pi_c, weights)
    logits = (pi_c - ref_c) - (pi_r - ref_r)
    losses = (-(1.0 - label_smoothing) * jax.nn.log_sigmoid(beta * logits)
              - label_smoothing * jax.nn.log_sigmoid(-beta * logits))
    chosen_reward = jax.lax.stop_gradient(beta * (pi_c - ref_c))
    rejected_reward = jax.lax.stop_gradient(beta * (pi_r - ref_r))
    metrics = {
        "rewards/chosen": _mean(chosen_reward, w),
        "rewards/rejected": _mean(rejected_reward, w),
        "rewards/accuracies": _mean((chosen_reward > rejected_reward).astype(jnp.float32), w),
        "rewards/margins": _mean(chosen_reward - rejected_reward, w),
        "logps/chosen": _mean(jax.lax.stop_gradient(pi_c), w),
        "logps/rejected": _mean(jax.lax.stop_gradient(pi_r), w),
    }
    return _mean(losses, w), metrics
