"""Generated pretraining text, mixed into a corpus by weight: arithmetic worked in columns.

    train = mix_generated(train, {"arithmetic": 0.25}, levels=(1, 2, 4), seed=0,
                          heldout_fraction=0.1)

Weight w is the generator's share of the mixed text in characters (nanochat's midtraining
idea at pretraining time). Only training-split problems are written, so no held-out problem
of the RL or SFT evaluations appears in pretraining text."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

import numpy as np

from llm_jax.data.index import ConcatIndex, memory_index
from llm_jax.data.splits import split_of
from llm_jax.recipes.math.arithmetic import generate_problem

GENERATORS = ("arithmetic",)
DOCUMENT_CHARS = 2000  # about a dozen problems per document
SAMPLED_DOCUMENTS = 1000  # corpus documents read to estimate its size in characters


def arithmetic_document(rng: random.Random, levels: Sequence[int], heldout_fraction: float,
                        chars: int = DOCUMENT_CHARS) -> str:
    """Training-split problems, each with its column-worked solution, until `chars`."""
    parts, total = [], 0
    while total < chars:
        problem = generate_problem(rng, rng.choice(list(levels)))
        if split_of(problem.computation, heldout_fraction) != "train":
            continue
        part = f"Problem: {problem.question}\nSolution:\n{problem.worked_solution('column')}"
        parts.append(part)
        total += len(part) + 2
    return "\n\n".join(parts)


def corpus_chars(corpus, seed: int = 0) -> int:
    """The corpus' size in characters, from up to SAMPLED_DOCUMENTS documents (a Parquet
    corpus is never read whole for this)."""
    n = len(corpus)
    picks = (np.arange(n) if n <= SAMPLED_DOCUMENTS
             else np.random.default_rng(seed).choice(n, SAMPLED_DOCUMENTS, replace=False))
    lengths = [len(doc) for doc in (corpus[int(i)] for i in picks) if doc is not None]
    return int(np.mean(lengths) * n) if lengths else 0


def mix_generated(corpus, weights: Mapping[str, float], *, levels: Sequence[int], seed: int,
                  heldout_fraction: float):
    """`corpus` plus generated documents; weights in [0, 1), summing below 1."""
    weights = {k: float(w) for k, w in weights.items() if w}
    unknown = set(weights) - set(GENERATORS)
    if unknown:
        raise ValueError(f"unknown generated data {sorted(unknown)}; choose from {GENERATORS}")
    if any(w < 0 for w in weights.values()) or sum(weights.values()) >= 1:
        raise ValueError(f"generated weights must be >= 0 and sum below 1, got {weights}")
    if not weights:
        return corpus
    base = corpus_chars(corpus, seed)
    rest = 1.0 - sum(weights.values())
    rng = random.Random(f"{seed}:generated:arithmetic")
    docs, made = [], 0
    target = weights["arithmetic"] / rest * base
    while made < target:
        docs.append(arithmetic_document(rng, levels, heldout_fraction))
        made += len(docs[-1])
    return ConcatIndex(corpus, memory_index(docs))
