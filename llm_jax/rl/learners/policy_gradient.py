"""The GRPO family (GRPO, Dr. GRPO, RLOO, DAPO's clip-higher, GSPO): the clipped surrogate.

Rows of the iteration's first update use the trainer's own log-probs as the old ones (ratio
exactly 1); `sampler_logprob_diff` reports how far the sampler's differ."""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np
from flax import linen as nn

from llm_jax.errors import ConfigError
from llm_jax.generate.logprobs import completion_logprobs
from llm_jax.losses.policy import PolicyLossConfig, masked_mean, policy_loss
from llm_jax.rl.advantages import advantages
from llm_jax.rl.experience import Experience, drop_silent_rows, minibatch_rows, take
from llm_jax.rl.learners.base import Learner, logprob_temperature, loss_config, register
from llm_jax.rl.step_credit import token_advantages


def surrogate_loss(model: nn.Module, loss_cfg: PolicyLossConfig,
                   temperature: float = 1.0) -> Callable:
    """`(policy_params, batch) -> (loss, weight, metrics)`: the clipped policy loss of the
    learner rows in `batch` (with `advantages` per row or per token, and `fresh`), on the
    log-probs of the policy at `temperature`."""

    def loss(params, batch):
        steps = batch["loss_mask"].shape[1]
        prompt_len = batch["tokens"].shape[1] - steps
        logp, entropy = completion_logprobs(model, params, batch["tokens"], batch["present"],
                                            prompt_len, with_entropy=True,
                                            temperature=temperature)
        mask = batch["loss_mask"]
        fresh = batch["fresh"][:, None] > 0
        old = jax.numpy.where(fresh, jax.lax.stop_gradient(logp), batch["old_logprobs"])
        # A minibatch whose gradient-free rows were dropped brings its whole weight along.
        whole = batch["weight"][0] if "weight" in batch else None
        value, weight, metrics = policy_loss(logp, old, batch["advantages"], mask, loss_cfg,
                                             ref_logp=batch.get("ref_logprobs"), weight=whole)
        drift = jax.numpy.abs(jax.lax.stop_gradient(logp) - batch["old_logprobs"])
        metrics["sampler_logprob_diff"] = jax.numpy.where(fresh & (mask > 0), drift, 0.0).max()
        metrics["entropy"] = masked_mean(entropy, mask)
        return value, weight, metrics

    return loss


def policy_gradient_loss(model: nn.Module, loss_cfg: PolicyLossConfig,
                         temperature: float = 1.0) -> Callable:
    """`loss_fn(params, batch, rng) -> (loss, aux)` of the GRPO family, for the train step."""
    surrogate = surrogate_loss(model, loss_cfg, temperature)

    def loss_fn(params, batch, rng):
        del rng
        value, weight, metrics = surrogate(params, batch)
        return value, {"weight": weight, **metrics}

    return loss_fn


@register("policy_gradient")
class PolicyGradientLearner(Learner):
    """GRPO and its variants; which one is the config (`rl.advantage`, `rl.aggregation`,
    `rl.importance`, `rl.eps_*`, `rl.kl_coef`)."""

    skips_silent_rows = True  # PPO's per-token advantages are never all 0 in a row

    @classmethod
    def check_config(cls, config) -> None:
        super().check_config(config)
        rl = config.rl
        if rl.step_credit and rl.importance == "sequence":
            raise ConfigError("rl.step_credit: per-token advantages need rl.importance=token "
                              "(a sequence-level ratio takes one advantage a completion)")
        rows = rl.prompts_per_iteration * rl.group_size
        if rows % rl.minibatches:
            raise ConfigError(f"rl.minibatches={rl.minibatches}: each iteration's {rows} "
                              "completions (rl.prompts_per_iteration × rl.group_size) must "
                              "split into rl.minibatches equal parts")

    def __init__(self, config, run, model_cfg):
        rl, shards = config.rl, run.batch_sharding.num_devices
        minibatch = rl.prompts_per_iteration * rl.group_size // rl.minibatches
        if minibatch % shards:
            raise ConfigError(f"rl.minibatches={rl.minibatches}: a minibatch of {minibatch} "
                              f"completions does not split over the mesh's {shards} "
                              "data-parallel shards")
        super().__init__(config, run, model_cfg)

    def loss(self) -> Callable:
        return policy_gradient_loss(self.model, loss_config(self.rl, self.rl.kl_coef),
                                    logprob_temperature(self.rl))

    def targets(self, state, experience: Experience) -> tuple[dict, dict[str, float]]:
        """The learner rows with what the loss needs beside them: advantages per row and,
        with a KL term, the reference's log-probs."""
        batch = experience.learner_rows()
        batch["advantages"] = advantages(experience.info.rewards, self.rl.group_size,
                                         self.rl.advantage)
        if self.rl.step_credit:  # per token: no blame on the lines before the first wrong one
            starts = np.array([m.get("blame_from", 0) for m in experience.metas], np.int32)
            batch["advantages"] = token_advantages(batch["advantages"], starts,
                                                   batch["loss_mask"].shape[1])
        if self.rl.kl_coef:
            batch["ref_logprobs"] = experience.ref_logprobs
        return batch, {}

    def update(self, state, experience: Experience, iteration: int):
        batch, metrics = self.targets(state, experience)
        rng = np.random.default_rng([self.seed, iteration])
        rows = len(batch["loss_mask"])
        # Rows with advantage 0 carry no gradient unless a KL term pulls on them.
        skip = self.skips_silent_rows and self.rl.skip_zero_advantage and not self.rl.kl_coef
        kept = []

        def minibatches():
            for epoch in range(self.rl.epochs):
                for k, part in enumerate(minibatch_rows(rows, self.rl.minibatches, rng)):
                    mb = take(batch, part)
                    # Before any update of this iteration the policy is the one that sampled.
                    mb["fresh"] = np.full(len(part), float(epoch == 0 and k == 0), np.float32)
                    if skip:
                        mb, n = drop_silent_rows(mb, self.rl.aggregation,
                                                 self.run.batch_sharding.num_devices)
                        kept.append(n)
                    yield mb

        state, learned = self.run_updates(state, minibatches())
        if skip:
            learned["learner/rows_kept"] = float(np.mean(kept))
        return state, {**metrics, **learned}
