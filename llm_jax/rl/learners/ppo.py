"""PPO for RLHF: clipped policy surrogate with GAE from a critic, plus the clipped value loss.

The KL is paid in the per-token rewards, not the loss. PPO trains both in full (never LoRA)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

import jax
import numpy as np

from llm_jax.errors import ConfigError
from llm_jax.losses.value import clipped_value_loss
from llm_jax.models.headed import Critic
from llm_jax.rl.experience import Experience
from llm_jax.rl.learners.base import logprob_temperature, loss_config, register
from llm_jax.rl.learners.policy_gradient import PolicyGradientLearner, surrogate_loss
from llm_jax.rl.ppo import CRITIC, POLICY, init_actor_critic, ppo_batch_targets


@register("ppo")
class PPOLearner(PolicyGradientLearner):
    skips_silent_rows = False

    def __init__(self, config, run, model_cfg):
        self.critic = Critic(model_cfg)
        super().__init__(config, run, model_cfg)
        self.sampler_params = lambda params: params[POLICY]
        rl = self.rl
        self._targets = jax.jit(functools.partial(
            ppo_batch_targets, self.critic, kl_coef=rl.kl_coef, gamma=rl.gamma, lam=rl.lam,
            whiten_advantages=rl.whiten_advantages), static_argnums=2)

    @classmethod
    def check_config(cls, config) -> None:
        super().check_config(config)
        if config.lora.rank:
            raise ConfigError("lora.rank: PPO trains the policy and its critic in full; set "
                              "--config.lora.rank=0")

    def init_state(self, model_cfg, optimizer):
        return init_actor_critic(self.run, model_cfg, self.critic, optimizer)

    def loss(self) -> Callable:
        surrogate = surrogate_loss(self.model, loss_config(self.rl, kl_coef=0.0),
                                   logprob_temperature(self.rl))
        critic, vf_coef, value_clip = self.critic, self.rl.vf_coef, self.rl.value_clip

        def loss_fn(params, batch, rng):
            del rng
            value, weight, metrics = surrogate(params[POLICY], batch)
            prompt_len = batch["tokens"].shape[1] - batch["loss_mask"].shape[1]
            values = critic.apply({"params": params[CRITIC]}, batch["tokens"],
                                  batch["present"], prompt_len)
            value_loss, value_metrics = clipped_value_loss(
                values, batch["old_values"], batch["returns"], batch["loss_mask"], value_clip)
            metrics.update(value_metrics, policy_loss=value)
            return value + vf_coef * value_loss, {"weight": weight, **metrics}

        return loss_fn

    def targets(self, state, experience: Experience) -> tuple[dict, dict[str, float]]:
        """The critic's values, GAE advantages and returns of the rollout beside its rows."""
        timer = time.perf_counter()
        batch = experience.learner_rows()
        inputs = {k: batch[k] for k in ("tokens", "present", "loss_mask", "old_logprobs")}
        inputs["scores"] = np.asarray(experience.info.rewards, np.float32)
        if experience.ref_logprobs is not None and self.rl.kl_coef:
            inputs["ref_logprobs"] = experience.ref_logprobs
        prompt_len = batch["tokens"].shape[1] - batch["loss_mask"].shape[1]
        out = jax.device_get(self._targets(state.params[CRITIC], self.run.put_batch(inputs),
                                           prompt_len))
        batch.update({k: np.asarray(v) for k, v in out.items() if k != "rewards"})
        mask = batch["loss_mask"]
        tokens = max(float(mask.sum()), 1.0)
        return batch, {
            "time/critic": time.perf_counter() - timer,
            # the KL penalty a completion paid in all, TRL's objective/non_score_reward
            "non_score_reward": float((out["rewards"] * mask).sum(1).mean()
                                      - inputs["scores"].mean()),
            "values/mean": float((out["old_values"] * mask).sum() / tokens),
            "returns/mean": float((out["returns"] * mask).sum() / tokens)}
