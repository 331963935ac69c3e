"""One iteration's experience: sample, score, refill silent groups, reference log-probs.

    experience, metrics = RolloutWorker(config, run, roles, sampler, ...)(params, iteration)

Problems and random streams depend only on the iteration (and refill round), so a resumed run
repeats an unbroken run's iterations."""

from __future__ import annotations

import logging
import time

import jax
import ml_collections
import numpy as np

from llm_jax.eval.chat import generate_replies
from llm_jax.eval.problems import render_problems
from llm_jax.generate.logprobs import completion_logprobs
from llm_jax.generate.sampler import FINISH_LENGTH, SamplingConfig
from llm_jax.rl.advantages import zero_std_groups
from llm_jax.rl.experience import Experience, Sampled, learner_batch, merge_groups
from llm_jax.rl.learners.base import logprob_temperature
from llm_jax.rl.overoptimization import GOLD, KL, PROXY
from llm_jax.rl.rewards import reward_details
from llm_jax.rl.roles import Roles
from llm_jax.rl.step_credit import blame_starts

log = logging.getLogger(__name__)


class RolloutWorker:
    """`worker(params, iteration) -> (Experience, metrics)`; metrics of the first rollout."""

    def __init__(self, config: ml_collections.ConfigDict, run, roles: Roles, sampler,
                 tokenizer, template, tools, schedule):
        self.rl, self.run, self.roles = config.rl, run, roles
        self.sampler, self.tokenizer, self.template, self.tools = (
            sampler, tokenizer, template, tools)
        self.schedule = schedule
        self.seed = config.run.seed
        self.sample_every = config.train.sample_every
        self.sampling = SamplingConfig(
            max_new_tokens=self.rl.max_new_tokens, temperature=self.rl.temperature,
            top_p=self.rl.top_p, top_k=self.rl.top_k, n=self.rl.group_size,
            logprob_temperature=logprob_temperature(self.rl),
            stop_tokens=tuple(template.stop_ids(tokenizer)), pad_id=tokenizer.pad_id)
        self.stuck = 0  # consecutive iterations with nothing to learn from
        reference = roles.reference
        if reference is not None:
            temperature = logprob_temperature(self.rl)
            self._reference_logprobs = jax.jit(
                lambda p, tokens, present, prompt_len: completion_logprobs(
                    reference.model, p, tokens, present, prompt_len,
                    temperature=temperature)[0], static_argnums=3)

    def __call__(self, params, iteration: int) -> tuple[Experience, dict[str, float]]:
        g = self.rl.group_size
        timer = time.perf_counter()
        sampled = self._sample(params, self.schedule(iteration), iteration, 0)
        rollout, texts, rows, metas, info = sampled
        metrics = (info.metrics() if hasattr(self.roles.reward, "details") else {
            k: v for k, v in info.metrics().items()
            if k in ("reward", "reward_std", "completions/clipped_ratio")})
        if self.roles.gold is not None:  # the proxy (what is optimised) beside the truth
            metrics[PROXY] = float(info.rewards.mean())
            metrics[GOLD] = float(np.mean(self.roles.gold([p.prompt for p in rows], texts,
                                                          metas)))
        zero_std = zero_std_groups(info.rewards, g)
        metrics.update({"frac_reward_zero_std": float(zero_std.mean()),
                        "completions/mean_length": float(rollout.lengths.mean()),
                        "completions/max_length": float(rollout.lengths.max())})
        self._watch(zero_std, rollout.finish_reason == FINISH_LENGTH)
        if self.rl.refill_rounds and zero_std.any():
            sampled, refill_metrics = self._refill(params, sampled, iteration)
            metrics.update(refill_metrics)
        metrics["time/rollout"] = time.perf_counter() - timer
        if self.sample_every and iteration % self.sample_every == 0:
            s = sampled
            self.run.tracker.log_samples(iteration, [
                {"prompt": p.prompt, "completion": t, "reward": f"{r:.2f}"}
                for p, t, r in zip(s.rows[::g], s.texts[::g], s.info.rewards[::g])])
        ref = None
        if self.roles.reference is not None:
            timer = time.perf_counter()
            ref, kl = self._reference(sampled.rollout)
            metrics.update({"time/reference": time.perf_counter() - timer, KL: kl})
        return Experience(sampled.rollout, sampled.texts, sampled.rows, sampled.metas,
                          sampled.info, ref), metrics

    def _sample(self, params, problems, iteration: int, round_: int) -> Sampled:
        """G samples for each problem, scored: round 0 is the iteration's rollout, rounds
        1, 2, ... dynamic sampling's refills (each its own fixed random stream)."""
        rng = jax.random.fold_in(jax.random.PRNGKey(self.seed), iteration)
        if round_:
            rng = jax.random.fold_in(rng, round_)
        rollout, texts = generate_replies(
            self.sampler, params, render_problems(problems, self.tokenizer, self.template),
            rng, self.sampling, self.tokenizer, self.tools)
        rows = [problems[i] for i in rollout.prompt_index]
        truncated = rollout.finish_reason == FINISH_LENGTH
        metas = [{**p.meta, "truncated": bool(t)} for p, t in zip(rows, truncated)]
        info = reward_details(self.roles.reward, [p.prompt for p in rows], texts, metas)
        if self.rl.step_credit:  # where each wrong reply's blame starts, for the learner
            starts = blame_starts(rollout.tokens, rollout.lengths, texts, metas,
                                  self.tokenizer.decode)
            for meta, start in zip(metas, starts):
                meta["blame_from"] = int(start)
        return Sampled(rollout, texts, rows, metas, info)

    def _refill(self, params, first: Sampled, iteration: int
                ) -> tuple[Sampled, dict[str, float]]:
        """DAPO's dynamic sampling: swap all-equal groups for fresh ones, up to `refill_rounds`."""
        g, rounds = self.rl.group_size, [first]
        silent = zero_std_groups(first.info.rewards, g)
        informative = [(0, k) for k in np.flatnonzero(~silent)]
        wanted = len(silent)
        for round_ in range(1, self.rl.refill_rounds + 1):
            if len(informative) >= wanted:
                break
            extra = self._sample(params, self.schedule.refill(iteration, round_), iteration,
                                 round_)
            rounds.append(extra)
            informative += [(round_, k) for k in
                            np.flatnonzero(~zero_std_groups(extra.info.rewards, g))]
        picks = informative[:wanted]
        picks += [(0, k) for k in np.flatnonzero(silent)][:wanted - len(picks)]
        merged = merge_groups(rounds, picks, g, self.tokenizer.pad_id)
        return merged, {"dynamic/rounds": float(len(rounds) - 1),
                        "dynamic/frac_zero_std_after": float(
                            zero_std_groups(merged.info.rewards, g).mean())}

    def _reference(self, rollout) -> tuple[np.ndarray, float]:
        """The reference's log-probs and the mean sequence KL estimate Σ_t (log π − log π_ref)."""
        batch = learner_batch(rollout)
        device = self.run.put_batch({"tokens": batch["tokens"], "present": batch["present"]})
        prompt_len = batch["tokens"].shape[1] - batch["loss_mask"].shape[1]
        ref = np.asarray(jax.device_get(self._reference_logprobs(
            self.roles.reference.params, device["tokens"], device["present"], prompt_len)))
        kl = float(((batch["old_logprobs"] - ref) * batch["loss_mask"]).sum(1).mean())
        return ref, kl

    def _watch(self, zero_std: np.ndarray, truncated: np.ndarray) -> None:
        stuck = bool(zero_std.all() or truncated.all())
        self.stuck = self.stuck + 1 if stuck else 0
        if self.rl.warn_after and self.stuck == self.rl.warn_after:
            why = ("every completion was truncated at max_new_tokens"
                   if truncated.all() else "every group's samples got the same reward")
            log.warning("!!! NOTHING TO LEARN for %d iterations: %s, so every advantage is 0. "
                        "Check the task's difficulty, rl.max_new_tokens, rl.temperature and the "
                        "reward.", self.stuck, why)
