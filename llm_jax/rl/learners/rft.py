"""Rejection-sampling fine-tuning: next-token loss on each prompt's `rft_keep` shortest
correct completions, `epochs` passes an iteration. No reference, no advantages."""

from __future__ import annotations

from collections.abc import Callable

from llm_jax.generate.logprobs import completion_logprobs
from llm_jax.losses.policy import aggregate, masked_mean
from llm_jax.rl.experience import Experience, bucket_rows, pad_rows, rft_rows, take
from llm_jax.rl.learners.base import Learner, register


@register("rft")
class RejectionSamplingLearner(Learner):
    uses_reference = False

    @property
    def updates_per_iteration(self) -> int:
        return self.rl.epochs

    def loss(self) -> Callable:
        model = self.model

        def loss_fn(params, batch, rng):
            del rng
            prompt_len = batch["tokens"].shape[1] - batch["loss_mask"].shape[1]
            logp, entropy = completion_logprobs(model, params, batch["tokens"],
                                                batch["present"], prompt_len, with_entropy=True)
            mask = batch["loss_mask"]
            loss, weight = aggregate(-logp, mask, "token_mean")
            return loss, {"weight": weight, "entropy": masked_mean(entropy, mask)}

        return loss_fn

    def update(self, state, experience: Experience, iteration: int):
        kept = rft_rows(experience.info.correct, experience.rollout.lengths,
                        self.rl.group_size, self.rl.rft_keep)
        metrics = {"rft/kept": float(len(kept))}
        if not len(kept):  # nothing correct this time: no update, the optimizer is untouched
            return state, metrics
        batch = take(experience.learner_rows(), kept)
        mb = pad_rows(batch, bucket_rows(len(kept), self.run.batch_sharding.num_devices))
        state, learned = self.run_updates(state, (mb for _ in range(self.rl.epochs)))
        return state, {**metrics, **learned}
