"""From a rollout to the learner's batches: sequences, masks, log-probs, advantages.

A row is the left-padded prompt (P slots) then the completion (T slots): `tokens`, `present`
[R, P+T] (forced tool output included), `loss_mask` and `old_logprobs` [R, T] (sampled tokens
only). `drop_silent_rows` (β = 0) and `trim_completions` are exact savings."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from llm_jax.generate.sampler import Rollout, bucket_size
from llm_jax.losses.policy import aggregation_weight
from llm_jax.rl.rewards import RewardInfo


def learner_batch(rollout: Rollout) -> dict[str, np.ndarray]:
    """The rollout as learner rows (see the module docstring)."""
    steps = rollout.tokens.shape[1]
    generated = (np.arange(steps)[None, :] < rollout.lengths[:, None]).astype(np.int32)
    return {
        "tokens": np.concatenate([rollout.prompt_tokens, rollout.tokens], 1).astype(np.int32),
        "present": np.concatenate([rollout.prompt_mask, generated], 1).astype(np.int32),
        "loss_mask": (rollout.mask * generated).astype(np.int32),
        "old_logprobs": np.where(rollout.mask > 0, rollout.logprobs, 0.0).astype(np.float32),
    }


def take(batch: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[rows] for k, v in batch.items()}


def minibatch_rows(n_rows: int, minibatches: int, rng: np.random.Generator
                   ) -> Iterator[np.ndarray]:
    """One shuffled pass over the rows, in `minibatches` equal parts."""
    if minibatches < 1 or n_rows % minibatches:
        raise ValueError(f"{n_rows} rollout rows do not split into {minibatches} minibatches")
    order = rng.permutation(n_rows)
    yield from np.split(order, minibatches)


def rft_rows(correct: np.ndarray, lengths: np.ndarray, group_size: int, keep: int
             ) -> np.ndarray:
    """Rows to fine-tune on in rejection sampling: per prompt, its `keep` shortest correct
    completions (the seeds' "take the top solution"); ties go to the earlier sample."""
    chosen = []
    for g in range(len(correct) // group_size):
        rows = [g * group_size + i for i in range(group_size) if correct[g * group_size + i]]
        chosen += sorted(rows, key=lambda r: (lengths[r], r))[:keep]
    return np.array(sorted(chosen), np.int64)


def pad_rows(batch: dict[str, np.ndarray], rows: int) -> dict[str, np.ndarray]:
    """`batch` grown to `rows` rows with copies of its first row whose `loss_mask` is 0: they
    add no loss, and as real sequences they keep every activation finite."""
    n = len(batch["loss_mask"])
    if n >= rows:
        return batch
    fill = np.zeros(rows - n, np.int64)
    out = {k: np.concatenate([v, v[fill]]) for k, v in batch.items()}
    out["loss_mask"][n:] = 0
    return out


def bucket_rows(n: int, devices: int) -> int:
    """`n` rows rounded up to a power of two and to whole data-parallel shards, so a run
    compiles its learner for few distinct batch shapes."""
    rows = max(1 << max(n - 1, 0).bit_length(), devices)
    return -(-rows // devices) * devices


def drop_silent_rows(minibatch: dict[str, np.ndarray], aggregation: str, devices: int
                     ) -> tuple[dict[str, np.ndarray], int]:
    """(rows of `minibatch` with advantage ≠ 0, padded by `bucket_rows`; rows kept).

    Exact without a KL term: the batch keeps the whole minibatch's `weight`, and an empty
    minibatch keeps one bucket of empty rows so the optimizer moves as it would have."""
    mask = minibatch["loss_mask"]
    signal = minibatch["advantages"] != 0
    if signal.ndim == 2:  # per-token advantages: a row counts if any token has one
        signal = signal.any(1)
    kept = np.flatnonzero(signal & (mask.sum(1) > 0))
    out = take(minibatch, kept if len(kept) else np.zeros(1, np.int64))
    if not len(kept):
        out["loss_mask"] = np.zeros_like(out["loss_mask"])
    out = pad_rows(out, bucket_rows(len(kept), devices))
    out["weight"] = np.full(len(out["loss_mask"]), aggregation_weight(mask, aggregation),
                            np.float32)
    return out, len(kept)


# Completion widths the learner is compiled for: powers of two up to this, multiples above it.
COMPLETION_BUCKET = 16


def trim_completions(minibatch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`minibatch` with completion slots cut to its longest completion (bucketed).

    Per-token [rows, T] and sequence [rows, P+T] arrays lose the same trailing, empty columns."""
    steps = minibatch["loss_mask"].shape[1]
    width = minibatch["tokens"].shape[1]
    used = minibatch["present"][:, width - steps:].any(0)
    longest = int(np.flatnonzero(used)[-1]) + 1 if used.any() else 1
    keep = min(bucket_size(longest, COMPLETION_BUCKET), steps)
    if keep == steps:
        return minibatch
    cut = steps - keep
    out = {}
    for key, value in minibatch.items():
        if value.ndim == 2 and value.shape[1] in (steps, width):
            value = value[:, :value.shape[1] - cut]
        out[key] = value
    return out


class Sampled(NamedTuple):
    """One scored rollout: the sampler's rows, their texts, problems, metas and rewards."""

    rollout: Rollout
    texts: list[str]
    rows: list
    metas: list[dict]
    info: RewardInfo


def merge_groups(parts: list[Sampled], picks: list[tuple[int, int]], group_size: int,
                 pad_id: int) -> Sampled:
    """The groups `picks` = [(part, group), ...] of several scored rollouts as one, in that
    order (prompts left-padded to the widest part's width)."""
    rows = np.concatenate([np.arange(k * group_size, (k + 1) * group_size) for _, k in picks])
    part_of = np.repeat([p for p, _ in picks], group_size)
    width = max(s.rollout.prompt_tokens.shape[1] for s in parts)

    def gather(get, pad=None):
        values = [get(parts[p])[r] for p, r in zip(part_of, rows)]
        if pad is not None:
            values = [np.pad(v, (width - len(v), 0), constant_values=pad) for v in values]
        return np.stack(values) if isinstance(values[0], np.ndarray) or pad is not None \
            else np.array(values)

    r = parts[0].rollout
    rollout = type(r)(
        prompt_tokens=gather(lambda s: s.rollout.prompt_tokens, pad_id),
        prompt_mask=gather(lambda s: s.rollout.prompt_mask, 0),
        tokens=gather(lambda s: s.rollout.tokens), logprobs=gather(lambda s: s.rollout.logprobs),
        mask=gather(lambda s: s.rollout.mask), lengths=gather(lambda s: s.rollout.lengths),
        finish_reason=gather(lambda s: s.rollout.finish_reason),
        prompt_index=np.repeat(np.arange(len(picks)), group_size).astype(np.int32))
    info = RewardInfo(*(gather(lambda s, f=f: getattr(s.info, f)) for f in
                        ("rewards", "correct", "has_answer", "formatted", "truncated")))
    take_list = lambda get: [get(parts[p])[r] for p, r in zip(part_of, rows)]  # noqa: E731
    return Sampled(rollout, take_list(lambda s: s.texts), take_list(lambda s: s.rows),
                   take_list(lambda s: s.metas), info)


@dataclasses.dataclass(frozen=True)
class Experience:
    """One iteration's scored rollout: `group_size` rows per problem, plus the reference's
    log-probs [R, T] when one is loaded."""

    rollout: Rollout
    texts: list[str]
    problems: list
    metas: list[dict]
    info: RewardInfo
    ref_logprobs: np.ndarray | None = None

    def learner_rows(self) -> dict[str, np.ndarray]:
        return learner_batch(self.rollout)
