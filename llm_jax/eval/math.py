"""Math accuracy and pass@k from per-sample correctness, whatever produced the samples.

    pass_at_k_metrics(np.array([[1, 0, 0, 1], [0, 0, 0, 0]], bool), ks=(1, 2))

pass@k is Chen et al. (2021)'s unbiased estimator 1 - C(n-c, k) / C(n, k), averaged."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Sequence
from fractions import Fraction

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """1 - C(n-c, k) / C(n, k): P(at least one of k samples drawn from n is correct)."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n samples, got k={k}, n={n}")
    # Exact integer binomials: no float cancellation when the answer is close to 0 or 1.
    return float(1 - Fraction(math.comb(n - c, k), math.comb(n, k)))


def grouped(correct: Sequence[bool] | np.ndarray, group_size: int) -> np.ndarray:
    """Flat per-sample correctness (problem-major, as rollouts lay out G samples) → [P, G]."""
    flat = np.asarray(correct, bool).reshape(-1)
    if group_size < 1 or flat.size % group_size:
        raise ValueError(f"{flat.size} samples do not split into groups of {group_size}")
    return flat.reshape(-1, group_size)


def accuracy(correct: Sequence[bool] | np.ndarray) -> float:
    """Fraction of samples that are correct (greedy accuracy when there is one per problem)."""
    values = np.asarray(correct, bool)
    if values.size == 0:
        raise ValueError("accuracy of no samples")
    return float(values.mean())


def pass_at_k_metrics(correct: np.ndarray, ks: Sequence[int] = (1,)) -> dict[str, float]:
    """{"pass@k": mean over problems} for a [problems, samples] correctness array."""
    table = np.asarray(correct, bool)
    if table.ndim != 2 or table.size == 0:
        raise ValueError(f"pass@k needs a non-empty [problems, samples] array, got {table.shape}")
    n = table.shape[1]
    counts = table.sum(axis=1)
    return {f"pass@{k}": float(np.mean([pass_at_k(n, int(c), k) for c in counts])) for k in ks}


def accuracy_by(correct: Sequence[bool] | np.ndarray,
                groups: Sequence[Hashable]) -> dict[Hashable, float]:
    """Accuracy per group label (e.g. per curriculum level or per task), labels in first-seen
    order."""
    values = np.asarray(correct, bool).reshape(-1)
    if len(groups) != values.size:
        raise ValueError(f"{values.size} samples but {len(groups)} group labels")
    hits: dict[Hashable, list[bool]] = defaultdict(list)
    for label, ok in zip(groups, values):
        hits[label].append(bool(ok))
    return {label: float(np.mean(v)) for label, v in hits.items()}
