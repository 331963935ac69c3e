"""Corpus statistics used as baselines for the model's loss."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def unigram_entropy(token_lists: Iterable[Iterable[int]], vocab_size: int) -> float:
    """Unigram entropy (nats/token): a context-free model's floor."""
    counts = np.zeros(vocab_size, np.int64)
    for ids in token_lists:
        counts += np.bincount(np.asarray(list(ids), np.int64), minlength=vocab_size)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())
