"""The models and judges one RL stage holds, built once: the policy it trains, a frozen
reference for the KL, the reward it is paid by, and the gold judge it is checked against.

    roles = build_roles(config, run, model_cfg, train_task, policy=learner.model,
                        wants_reference=learner.uses_reference)
    roles.reference    # a Role, or None when neither a KL term nor KL tracking needs it

The reference is the policy's starting point (the run's parent), restored into the same
shardings as the policy's params and never updated. With a KL weight of 0 nothing is loaded,
so a β = 0 run costs no memory for it. (PPO's critic is trained, so it lives in the learner's
state, not here.)
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any

import ml_collections
from flax import linen as nn

from llm_jax.checkpoints.sources import ModelSource
from llm_jax.errors import ConfigError
from llm_jax.models.config import ModelConfig
from llm_jax.models.transformer import Transformer
from llm_jax.rl.rewards import MathReward


@dataclasses.dataclass(frozen=True)
class Role:
    """One model of a stage: what it is and the params it runs with."""

    name: str
    model: nn.Module
    params: Any


@dataclasses.dataclass(frozen=True)
class Roles:
    policy: nn.Module
    reference: Role | None
    reward: Callable  # RewardFn(prompts, completions, meta) -> rewards [B]
    gold: Callable | None  # the programmatic judge beside the reward (RLHF), or None


def reference_role(run, model_cfg: ModelConfig, kl_coef: float,
                   source: ModelSource | None = None) -> Role | None:
    """The frozen reference (default: the run's parent), or None when `kl_coef` is 0."""
    if kl_coef == 0:
        return None
    return Role("reference", Transformer(model_cfg), run.frozen_params(model_cfg, source))


def make_reward(rl: ml_collections.ConfigDict, task, run=None) -> Callable:
    """`rl.reward`: "math" (correctness against the task, optional format bonus, truncation
    handled), "reward_model" (the RM run `rl.reward_model`, scored at the end of the
    sequence), "gold" (the programmatic judge), or "module:name" naming any
    `RewardFn(prompts, completions, meta)`."""
    if rl.reward == "math":
        return MathReward(rl.correct_weight, rl.format_weight, rl.truncated_reward,
                          tasks={task.name: task})
    if rl.reward == "reward_model":
        if not rl.reward_model:
            raise ConfigError("rl.reward=reward_model needs rl.reward_model=RUN_DIR (a "
                              "reward_model stage's run)")
        from llm_jax.rl.reward_model import make_reward_model_reward

        return make_reward_model_reward(rl.reward_model, run)
    if rl.reward == "gold":
        from llm_jax.recipes.gold import GoldLabeler

        return GoldLabeler()
    module, _, name = rl.reward.partition(":")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as e:
        raise ConfigError(f"rl.reward={rl.reward!r}: {e} (expected math or module:name)") \
            from None
    return fn


def build_roles(config: ml_collections.ConfigDict, run, model_cfg: ModelConfig, task, *,
                policy: nn.Module, wants_reference: bool) -> Roles:
    """The stage's roles from its config (`rl.reward`, `rl.gold`, `rl.kl_coef`,
    `rl.track_kl`); `wants_reference` is False for learners that never use one."""
    rl = config.rl
    gold = None
    if rl.gold:
        from llm_jax.recipes.gold import GoldLabeler

        gold = GoldLabeler()
    reference = None
    if wants_reference and (rl.kl_coef or rl.track_kl):
        # for the KL penalty, or only to log the KL (rl.track_kl)
        reference = reference_role(run, model_cfg, kl_coef=rl.kl_coef or 1.0)
    return Roles(policy=policy, reference=reference,
                 reward=make_reward(rl, task, run), gold=gold)
