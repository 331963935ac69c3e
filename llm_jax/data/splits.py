"""Train and held-out splits that never share a problem.

A problem's split is a pure function of its key's SHA-256, so it needs no global pass and
agrees across processes. Duplicates within a split are dropped by the same key."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from typing import Any

SPLITS = ("train", "heldout", "all")
# The held-out share every built-in math source uses by default (RL tasks, the SFT mixture,
# generated pretraining text): one number, so the three agree on what is held out.
DEFAULT_HELDOUT_FRACTION = 0.1
Problem = Any  # anything with a `prompt` (a math Problem, a prompt record)
Key = Callable[[Problem], str]


def normalize_question(text: str) -> str:
    """Case, spacing, Unicode forms and punctuation at the ends do not make a new problem."""
    text = unicodedata.normalize("NFKC", text).lower()
    return re.sub(r"\s+", " ", text).strip().strip(".?!:;").strip()


def question_key(problem: Problem) -> str:
    return normalize_question(problem.prompt)


def heldout_position(key: str, salt: str = "") -> float:
    """Where a key falls in [0, 1): a stable hash, the same on every machine and Python run."""
    digest = hashlib.sha256(f"{salt}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_of(key: str, heldout_fraction: float, salt: str = "") -> str:
    """'heldout' or 'train' for a problem key."""
    return "heldout" if heldout_position(key, salt) < heldout_fraction else "train"


def check_split(split: str, heldout_fraction: float) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if not 0.0 <= heldout_fraction < 1.0:
        raise ValueError(f"heldout_fraction must be in [0, 1), got {heldout_fraction}")


def select(problems: Iterable[Problem], split: str, heldout_fraction: float, *,
           key: Key = question_key, salt: str = "", dedupe: bool = True,
           exclude: Iterable[Problem] = ()) -> Iterator[Problem]:
    """The problems of one split (deduplicated); `exclude` drops keys found there."""
    check_split(split, heldout_fraction)
    seen = {key(p) for p in exclude}
    for problem in problems:
        k = key(problem)
        if k in seen:
            continue
        if split != "all" and split_of(k, heldout_fraction, salt) != split:
            continue
        if dedupe:
            seen.add(k)
        yield problem


def shared(a: Iterable[Problem], b: Iterable[Problem], key: Key = question_key) -> set[str]:
    """Keys that appear in both collections (empty when the splits are disjoint)."""
    return {key(p) for p in a} & {key(p) for p in b}
