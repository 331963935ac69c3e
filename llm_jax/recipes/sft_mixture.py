"""The built-in SFT mixture: chat data generated deterministically from a seed.

Records are `{"messages", "kind", "answer"}`; kinds are in `DEFAULT_WEIGHTS`. A record's split
is a stable hash of what it is about, so train and held-out never share a prompt."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping

from llm_jax.recipes.sft_math import (
    arithmetic_conversation,
    calculator_conversation,
    gsm_symbolic_conversations,
)
from llm_jax.recipes.sft_passages import PassageTasks
from llm_jax.recipes.sft_people import identity_conversation, refusal_conversation

DEFAULT_WEIGHTS = {"identity": 0.15, "refusal": 0.1, "arithmetic": 0.3, "gsm_symbolic": 0.15,
                   "calculator": 0.1, "passages": 0.2}
DEFAULT_LEVELS = (1, 2, 3, 4, 5)
MAX_TRIES_PER_RECORD = 200  # a kind that cannot fill its quota stops instead of spinning

Draw = Callable[[], tuple[dict | None, str]]


def _fill(draws: Iterator[tuple[dict | None, str]], n_train: int, n_heldout: int
          ) -> tuple[list[dict], list[dict]]:
    """Route (record, split) draws until both quotas are met (or the draws run dry)."""
    out: dict[str, list[dict]] = {"train": [], "heldout": []}
    want = {"train": n_train, "heldout": n_heldout}
    budget = MAX_TRIES_PER_RECORD * (n_train + n_heldout + 1)
    for record, split in draws:
        budget -= 1
        if record is not None and len(out[split]) < want[split]:
            out[split].append(record)
        if all(len(out[s]) >= want[s] for s in want) or budget <= 0:
            break
    return out["train"], out["heldout"]


def _repeat(draw: Draw) -> Iterator[tuple[dict | None, str]]:
    while True:
        yield draw()


def _kind_draws(kind: str, rng: random.Random, seed: int, *, name: str, maker: str,
                passages: PassageTasks | None, levels: tuple[int, ...], answer_first: float,
                heldout_fraction: float, n: int, working: str, calculator: float,
                answer_only: float) -> Iterator[tuple[dict | None, str]]:
    if kind == "identity":
        return _repeat(lambda: identity_conversation(rng, name, maker))
    if kind == "refusal":
        return _repeat(lambda: refusal_conversation(rng, heldout_fraction))
    if kind == "arithmetic":
        return _repeat(lambda: arithmetic_conversation(
            rng, levels=levels, answer_first=answer_first, heldout_fraction=heldout_fraction,
            working=working, calculator=calculator, answer_only=answer_only))
    if kind == "gsm_symbolic":
        # A finite stream: enough problems for both quotas at the held-out fraction.
        size = int(n / max(heldout_fraction, 1e-3)) + n + 10
        return gsm_symbolic_conversations(seed, answer_first=answer_first,
                                          heldout_fraction=heldout_fraction, size=size)
    if kind == "calculator":
        return _repeat(lambda: calculator_conversation(rng, heldout_fraction))
    if kind == "passages":
        splits = iter(lambda: rng.choice(("train", "heldout")), None)
        return ((passages.conversation(rng, s), s) for s in splits)
    raise ValueError(f"unknown SFT mixture kind {kind!r} (known: {', '.join(DEFAULT_WEIGHTS)})")


def build_mixture(seed: int, *, size: int, eval_size: int, name: str, maker: str,
                  books: Mapping[str, str] | None = None,
                  weights: Mapping[str, float] | None = None,
                  levels: tuple[int, ...] = DEFAULT_LEVELS, answer_first: float = 0.0,
                  heldout_fraction: float = 0.1, working: str = "column",
                  calculator: float = 0.0, answer_only: float = 0.0
                  ) -> tuple[list[dict], list[dict]]:
    """(train, held-out): about `size` shuffled training records, `eval_size` held-out per kind."""
    weights = dict(DEFAULT_WEIGHTS if weights is None else weights)
    if not books:
        weights.pop("passages", None)  # nothing to ground passage tasks in
    weights = {k: w for k, w in weights.items() if w > 0}
    if not weights:
        raise ValueError("the SFT mixture needs at least one kind with a positive weight")
    total = sum(weights.values())
    passages = PassageTasks(books, heldout_fraction) if books else None
    train: list[dict] = []
    heldout: list[dict] = []
    for kind in sorted(weights):  # sorted: the order (hence the result) never depends on dicts
        n = round(size * weights[kind] / total)
        rng = random.Random(f"{seed}:{kind}")
        draws = _kind_draws(kind, rng, seed, name=name, maker=maker, passages=passages,
                            levels=levels, answer_first=answer_first,
                            heldout_fraction=heldout_fraction, n=max(n, eval_size),
                            working=working, calculator=calculator, answer_only=answer_only)
        kind_train, kind_heldout = _fill(draws, n, eval_size)
        train += kind_train
        heldout += kind_heldout
    random.Random(f"{seed}:order").shuffle(train)
    return train, heldout
