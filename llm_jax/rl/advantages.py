"""Group-relative advantages: how much better each sample did than its prompt's other samples.

    adv = advantages(rewards, group_size=8, estimator="grpo")   # float32 [prompts × G]

Rewards come problem-major (a prompt's `G` samples adjacent); every token of a completion gets
its sample's advantage. `grpo` (Shao et al. 2024): (r - mean) / (std + eps), unbiased std as
TRL. `dr_grpo` (Liu et al. 2025): r - mean. `rloo` (Ahmadian et al. 2024): r minus the mean of
the other G-1 = G/(G-1)·(r - mean). A group of equal rewards gets exactly 0, never NaN."""

from __future__ import annotations

import numpy as np

ESTIMATORS = ("grpo", "dr_grpo", "rloo")


def group_rewards(rewards: np.ndarray, group_size: int) -> np.ndarray:
    """Flat rewards (problem-major) → [prompts, G] float64."""
    flat = np.asarray(rewards, np.float64).reshape(-1)
    if group_size < 1 or flat.size % group_size:
        raise ValueError(f"{flat.size} rewards do not split into groups of {group_size}")
    return flat.reshape(-1, group_size)


def advantages(rewards: np.ndarray, group_size: int, estimator: str = "grpo",
               eps: float = 1e-4) -> np.ndarray:
    """Per-sample advantages, float32 [prompts × G], same order as `rewards`."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown advantage estimator {estimator!r}; choose from {ESTIMATORS}")
    grouped = group_rewards(rewards, group_size)
    centered = grouped - grouped.mean(axis=1, keepdims=True)
    # Float sums can leave ±1e-17 where every reward is equal: make such groups exactly 0.
    centered[zero_std_groups(rewards, group_size)] = 0.0
    if estimator == "grpo":
        std = grouped.std(axis=1, ddof=1, keepdims=True) if group_size > 1 else 0.0
        out = centered / (std + eps)
    elif estimator == "dr_grpo":
        out = centered
    else:
        if group_size < 2:
            raise ValueError("rloo needs at least 2 samples per prompt")
        out = centered * group_size / (group_size - 1)
    return out.reshape(-1).astype(np.float32)


def zero_std_groups(rewards: np.ndarray, group_size: int) -> np.ndarray:
    """bool [prompts]: groups in which every sample got the same reward (no signal)."""
    grouped = group_rewards(rewards, group_size)
    return np.all(grouped == grouped[:, :1], axis=1)
