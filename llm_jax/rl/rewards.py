"""Rewards: one protocol, `(prompts, completions, meta) -> rewards`, for verifiers and RMs alike.

    reward_fn = MathReward(format_weight=0.1, truncated_reward=0.0)
    rewards = reward_fn(prompts, completions, metas)          # np.ndarray [B] float32
    info = reward_fn.details(prompts, completions, metas)     # + correct, has_answer, ... [B]
    tracker.log(info.metrics())

`meta[i]` is the `Problem.meta` of the prompt sample i answers (it carries `answer` and `task`)
plus what the rollout adds: `truncated` is True when the completion hit the token limit
before ending. A reward model implements the same `RewardFn`, so GRPO on math and RLHF differ
only in which function the config names.

Rewards are plain numpy on the host: extraction and verification are string work.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from llm_jax.recipes.math.answers import NUMBER, extract_answer, is_equivalent
from llm_jax.recipes.math.task import Problem, Task

Meta = Mapping[str, Any]
RewardFn = Callable[[Sequence[str], Sequence[str], Sequence[Meta]], np.ndarray]

# The format our solutions teach: the last non-blank line is exactly "#### N".
FINAL_LINE = re.compile(rf"####\s?(?:{NUMBER.pattern})")


def _check_lengths(prompts: Sequence[str], completions: Sequence[str],
                   meta: Sequence[Meta]) -> None:
    if not len(prompts) == len(completions) == len(meta):
        raise ValueError(f"rewards need one prompt and one meta per completion, got "
                         f"{len(prompts)} prompts, {len(completions)} completions, "
                         f"{len(meta)} metas")


def _reference(m: Meta) -> str:
    if "answer" not in m:
        raise ValueError(f"a math reward needs meta['answer'] (the reference); meta has "
                         f"{sorted(m)}")
    return str(m["answer"])


def is_formatted(completion: str) -> bool:
    """Whether the completion ends with a `#### N` line and nothing after it."""
    lines = completion.strip().splitlines()
    return bool(lines) and FINAL_LINE.fullmatch(lines[-1].strip()) is not None


def correctness_reward(prompts: Sequence[str], completions: Sequence[str],
                       meta: Sequence[Meta]) -> np.ndarray:
    """1.0 where the extracted answer equals `meta['answer']`, else 0.0 (no answer included)."""
    _check_lengths(prompts, completions, meta)
    return np.array([float(is_equivalent(extract_answer(c), _reference(m)))
                     for c, m in zip(completions, meta)], np.float32)


def format_reward(prompts: Sequence[str], completions: Sequence[str],
                  meta: Sequence[Meta]) -> np.ndarray:
    """1.0 where the completion ends with a proper `#### N` line, whatever N is."""
    _check_lengths(prompts, completions, meta)
    return np.array([float(is_formatted(c)) for c in completions], np.float32)


def weighted_sum(*terms: tuple[RewardFn, float]) -> RewardFn:
    """Σ weight·fn(...): combine reward functions, e.g. `weighted_sum((rm, 1.0), (fmt, 0.1))`."""

    def combined(prompts, completions, meta) -> np.ndarray:
        total = np.zeros(len(completions), np.float32)
        for fn, weight in terms:
            total += np.float32(weight) * np.asarray(fn(prompts, completions, meta), np.float32)
        return total

    return combined


@dataclasses.dataclass(frozen=True)
class RewardInfo:
    """Per-sample rewards and what went into them, for metrics and rejection sampling.

    `correct` is what the reward credited: a truncated completion is not correct when
    truncation overrides the reward, even if an answer appeared before the cut.
    """

    rewards: np.ndarray     # float32 [B]
    correct: np.ndarray     # bool [B]
    has_answer: np.ndarray  # bool [B]: an answer could be extracted at all
    formatted: np.ndarray   # bool [B]: ends with a proper "#### N" line
    truncated: np.ndarray   # bool [B]: hit the token limit (from meta)

    def metrics(self) -> dict[str, float]:
        """Batch means under the names RL dashboards use (TRL's where one exists)."""
        if not len(self.rewards):
            return {}
        return {"reward": float(self.rewards.mean()), "reward_std": float(self.rewards.std()),
                "accuracy": float(self.correct.mean()),
                "answer_rate": float(self.has_answer.mean()),
                "format_rate": float(self.formatted.mean()),
                "completions/clipped_ratio": float(self.truncated.mean())}


class MathReward:
    """correct_weight·[answer right] + format_weight·[ends with `#### N`], truncation handled.

    `truncated_reward`: the reward a truncated completion gets instead (0.0 by default, or a
    negative penalty); None scores truncated completions like any other. `tasks` maps
    `meta['task']` to a Task whose own `is_correct` judges that task's samples (e.g. a
    reasoning-gym verifier); other samples compare the extracted answer with `meta['answer']`.
    """

    def __init__(self, correct_weight: float = 1.0, format_weight: float = 0.0,
                 truncated_reward: float | None = 0.0, tasks: Mapping[str, Task] | None = None):
        self.correct_weight, self.format_weight = correct_weight, format_weight
        self.truncated_reward = truncated_reward
        self.tasks = dict(tasks or {})

    def _is_correct(self, prompt: str, completion: str, answer: str | None, m: Meta) -> bool:
        task = self.tasks.get(m.get("task"))
        if task is not None:
            return task.is_correct(completion, Problem(prompt, _reference(m), m))
        return is_equivalent(answer, _reference(m))

    def details(self, prompts: Sequence[str], completions: Sequence[str],
                meta: Sequence[Meta]) -> RewardInfo:
        _check_lengths(prompts, completions, meta)
        answers = [extract_answer(c) for c in completions]
        correct = np.array([self._is_correct(p, c, a, m) for p, c, a, m
                            in zip(prompts, completions, answers, meta)], bool)
        formatted = np.array([is_formatted(c) for c in completions], bool)
        truncated = np.array([bool(m.get("truncated", False)) for m in meta], bool)
        rewards = (self.correct_weight * correct + self.format_weight * formatted)
        rewards = rewards.astype(np.float32)
        if self.truncated_reward is not None:
            rewards[truncated] = self.truncated_reward
            correct = correct & ~truncated
        has_answer = np.array([a is not None for a in answers], bool)
        return RewardInfo(rewards, correct, has_answer, formatted, truncated)

    def __call__(self, prompts: Sequence[str], completions: Sequence[str],
                 meta: Sequence[Meta]) -> np.ndarray:
        return self.details(prompts, completions, meta).rewards


def reward_details(reward: Callable, prompts: Sequence[str], texts: Sequence[str],
                   metas: Sequence[Meta]) -> RewardInfo:
    """What a reward function says about a batch: a math reward reports correctness itself;
    for any other, a positive reward counts as "correct" (what rejection sampling keeps)."""
    if hasattr(reward, "details"):
        return reward.details(prompts, texts, metas)
    rewards = np.asarray(reward(prompts, texts, metas), np.float32)
    if rewards.shape != (len(texts),):
        raise ValueError(f"the reward function returned shape {rewards.shape} for "
                         f"{len(texts)} completions")
    no = np.zeros(len(texts), bool)
    truncated = np.array([m["truncated"] for m in metas], bool)
    return RewardInfo(rewards, rewards > 0, no, no, truncated)
