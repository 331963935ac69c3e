"""RL on verifiable rewards and on a reward model: GRPO and its variants, PPO, and
rejection-sampling fine-tuning.

    llm-jax train experiments/grpo_math_tiny.py      # from runs/sft_tiny/default
    llm-jax train experiments/rft_math_tiny.py
    llm-jax train experiments/rlhf_tiny.py:ppo       # PPO with a critic against a reward model

Each iteration (one loop iteration, one checkpoint unit):
1. rollout: `prompts_per_iteration` training problems, `group_size` samples each, through the
   one sampler (calculator calls answered, their output forced and never trained on);
2. rewards through the reward protocol (`llm_jax.rl.rewards`);
3. reference log-probs (only when `kl_coef` > 0 or `track_kl`);
4. advantages: group-relative (`llm_jax.rl.advantages`), or for `algorithm=ppo` per token by
   GAE over the critic's values, with the KL penalty in the per-token rewards
   (`llm_jax.rl.ppo`);
5. `epochs` × `minibatches` updates of the clipped policy loss (`llm_jax.losses.policy`, plus
   the critic's clipped value loss for PPO), or, for `algorithm=rft`, LM-loss updates on each
   prompt's shortest correct completions.

The problems and the rollout's random numbers are functions of the iteration number, so a run
resumed from a checkpoint repeats exactly the iterations a run that never stopped would have
made. Which algorithm runs is the config's `rl` section (configs/rl.py), never a copy of this
loop.
"""

from __future__ import annotations

import functools
import importlib
import logging
import time
from pathlib import Path

import jax
import ml_collections
import numpy as np

from llm_jax.checkpoints.sources import chat_template_for
from llm_jax.errors import ConfigError
from llm_jax.eval.chat import generate_replies
from llm_jax.eval.problems import (
    make_problem_evaluator,
    make_reward_evaluator,
    render_problems,
)
from llm_jax.generate.logprobs import completion_logprobs
from llm_jax.generate.sampler import FINISH_LENGTH, Sampler, SamplingConfig
from llm_jax.generate.tools import make_tools
from llm_jax.losses.policy import PolicyLossConfig, aggregate, masked_mean, policy_loss
from llm_jax.losses.value import clipped_value_loss
from llm_jax.models.transformer import Transformer
from llm_jax.recipes.math.schedule import ProblemSchedule, make_tasks
from llm_jax.recipes.math.task import AnswerTask
from llm_jax.rl.advantages import advantages, zero_std_groups
from llm_jax.rl.experience import (
    Sampled,
    bucket_rows,
    drop_silent_rows,
    learner_batch,
    merge_groups,
    minibatch_rows,
    pad_rows,
    rft_rows,
    take,
    trim_completions,
)
from llm_jax.rl.overoptimization import GOLD, KL, PROXY, StopRules, plot_overoptimization
from llm_jax.rl.ppo import CRITIC, POLICY, Critic, init_actor_critic, ppo_batch_targets
from llm_jax.rl.rewards import MathReward, RewardInfo
from llm_jax.rl.roles import reference_role
from llm_jax.train.setup import optimizer_from_config, start_run
from llm_jax.train.step import make_train_step

log = logging.getLogger(__name__)
ALGORITHMS = ("policy_gradient", "ppo", "rft")
OVEROPTIMIZATION_PLOT = "overoptimization.png"


def make_reward(rl: ml_collections.ConfigDict, task: AnswerTask, run=None):
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


def reward_details(reward, prompts: list[str], texts: list[str], metas: list[dict]
                   ) -> RewardInfo:
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


def _loss_config(rl: ml_collections.ConfigDict) -> PolicyLossConfig:
    try:
        # PPO pays the KL in its per-token rewards, not in the loss.
        kl_coef = 0.0 if rl.algorithm == "ppo" else rl.kl_coef
        return PolicyLossConfig(eps_low=rl.eps_low, eps_high=rl.eps_high, kl_coef=kl_coef,
                                kl_bias_correction=rl.kl_bias_correction,
                                aggregation=rl.aggregation,
                                max_completion_length=rl.max_new_tokens,
                                importance=rl.importance, seq_eps_low=rl.seq_eps_low,
                                seq_eps_high=rl.seq_eps_high)
    except ValueError as e:
        raise ConfigError(f"rl: {e}") from None


def make_rl_loss(model: Transformer, algorithm: str, loss_cfg: PolicyLossConfig, *,
                 critic: Critic | None = None, vf_coef: float = 0.0, value_clip: float = 0.2):
    """`loss_fn(params, batch, rng) -> (loss, aux)` for the train-step factory.

    policy_gradient: the clipped surrogate. Rows flagged `fresh` (those of the iteration's first
    update, taken before any update) use the trainer's own detached log-probs as the old ones,
    so their ratio is exactly 1; the sampler's agree with them to float rounding, which
    `sampler_logprob_diff` reports. ppo: the same surrogate on the policy's params with per-token
    advantages, plus `vf_coef` × the critic's clipped value loss. rft: next-token loss on the
    kept completions.
    """

    def loss_fn(params, batch, rng):
        del rng
        steps = batch["loss_mask"].shape[1]
        prompt_len = batch["tokens"].shape[1] - steps
        policy = params[POLICY] if algorithm == "ppo" else params
        logp, entropy = completion_logprobs(model, policy, batch["tokens"], batch["present"],
                                            prompt_len, with_entropy=True)
        mask = batch["loss_mask"]
        if algorithm == "rft":
            loss, weight = aggregate(-logp, mask, "token_mean")
            return loss, {"weight": weight, "entropy": masked_mean(entropy, mask)}
        fresh = batch["fresh"][:, None] > 0
        old = jax.numpy.where(fresh, jax.lax.stop_gradient(logp), batch["old_logprobs"])
        # A minibatch whose gradient-free rows were dropped brings its whole weight along.
        whole = batch["weight"][0] if "weight" in batch else None
        loss, weight, metrics = policy_loss(logp, old, batch["advantages"], mask, loss_cfg,
                                            ref_logp=batch.get("ref_logprobs"), weight=whole)
        drift = jax.numpy.abs(jax.lax.stop_gradient(logp) - batch["old_logprobs"])
        metrics["sampler_logprob_diff"] = jax.numpy.where(fresh & (mask > 0), drift, 0.0).max()
        metrics["entropy"] = masked_mean(entropy, mask)
        if algorithm == "ppo":
            values = critic.values(params[CRITIC], batch["tokens"], batch["present"], prompt_len)
            value_loss, value_metrics = clipped_value_loss(
                values, batch["old_values"], batch["returns"], mask, value_clip)
            metrics.update(value_metrics, policy_loss=loss)
            loss = loss + vf_coef * value_loss
        return loss, {"weight": weight, **metrics}

    return loss_fn


class RLIteration:
    """`iteration(state) -> (state, metrics)`: rollout, rewards, reference, advantages,
    updates. Holds everything fixed for the run; the iteration number is its only state."""

    def __init__(self, *, config, run, model, sampler, tokenizer, template, tools, schedule,
                 reward, step_fn, reference, full_params, start: int, gold=None,
                 stop_rules: StopRules | None = None, critic: Critic | None = None):
        self.rl, self.run, self.model = config.rl, run, model
        self.sampler, self.tokenizer, self.template = sampler, tokenizer, template
        self.tools = tools
        self.schedule, self.reward, self.step_fn = schedule, reward, step_fn
        self.reference, self.full_params = reference, full_params
        self.iteration = start
        self.seed = config.run.seed
        self.sample_every = config.train.sample_every
        self.sampling = SamplingConfig(
            max_new_tokens=self.rl.max_new_tokens, temperature=self.rl.temperature,
            top_p=self.rl.top_p, top_k=self.rl.top_k, n=self.rl.group_size,
            stop_tokens=tuple(template.stop_ids(tokenizer)), pad_id=tokenizer.pad_id)
        self.stuck = 0  # consecutive iterations with nothing to learn from
        self.gold = gold
        self.stop_rules = stop_rules
        self.stop_reason: str | None = None  # set by an evaluation's stop rule
        if critic is not None:
            self._ppo_targets = jax.jit(functools.partial(
                ppo_batch_targets, critic, kl_coef=self.rl.kl_coef, gamma=self.rl.gamma,
                lam=self.rl.lam, whiten_advantages=self.rl.whiten_advantages),
                static_argnums=2)
        if reference is not None:
            self._reference_logprobs = jax.jit(
                lambda p, tokens, present, prompt_len: completion_logprobs(
                    reference.model, p, tokens, present, prompt_len)[0], static_argnums=3)

    def _sample(self, params, problems, round_: int) -> Sampled:
        """G samples for each problem, scored: round 0 is the iteration's rollout, rounds
        1, 2, ... dynamic sampling's refills (each its own fixed random stream)."""
        rng = jax.random.fold_in(jax.random.PRNGKey(self.seed), self.iteration)
        if round_:
            rng = jax.random.fold_in(rng, round_)
        rollout, texts = generate_replies(
            self.sampler, params, render_problems(problems, self.tokenizer, self.template),
            rng, self.sampling, self.tokenizer, self.tools)
        rows = [problems[i] for i in rollout.prompt_index]
        truncated = rollout.finish_reason == FINISH_LENGTH
        metas = [{**p.meta, "truncated": bool(t)} for p, t in zip(rows, truncated)]
        info = reward_details(self.reward, [p.prompt for p in rows], texts, metas)
        return Sampled(rollout, texts, rows, metas, info)

    def _refill(self, params, first: Sampled) -> tuple[Sampled, dict[str, float]]:
        """DAPO's dynamic sampling: groups whose rewards are all equal are swapped for
        informative groups of fresh problems, round by round, until none is left or
        `refill_rounds` extra rollouts are spent (the rest then stay, with advantage 0)."""
        g, rounds = self.rl.group_size, [first]
        silent = zero_std_groups(first.info.rewards, g)
        informative = [(0, k) for k in np.flatnonzero(~silent)]
        wanted = len(silent)
        for round_ in range(1, self.rl.refill_rounds + 1):
            if len(informative) >= wanted:
                break
            extra = self._sample(params, self.schedule.refill(self.iteration, round_), round_)
            rounds.append(extra)
            informative += [(round_, k) for k in
                            np.flatnonzero(~zero_std_groups(extra.info.rewards, g))]
        picks = informative[:wanted]
        picks += [(0, k) for k in np.flatnonzero(silent)][:wanted - len(picks)]
        merged = merge_groups(rounds, picks, g, self.tokenizer.pad_id)
        return merged, {"dynamic/rounds": float(len(rounds) - 1),
                        "dynamic/frac_zero_std_after": float(
                            zero_std_groups(merged.info.rewards, g).mean())}

    def __call__(self, state):
        self.iteration += 1
        rl, g = self.rl, self.rl.group_size
        problems = self.schedule(self.iteration)
        timer = time.perf_counter()
        params = self.full_params(state.params)
        sampled = self._sample(params, problems, 0)
        rollout, texts, rows, metas, info = sampled
        metrics: dict[str, float] = {}
        # The figures describe the policy's own rollout; refills only choose what to learn from.
        metrics.update(info.metrics() if hasattr(self.reward, "details") else {
            k: v for k, v in info.metrics().items()
            if k in ("reward", "reward_std", "completions/clipped_ratio")})
        if self.gold is not None:  # the proxy (what is optimised) beside the truth
            metrics[PROXY] = float(info.rewards.mean())
            metrics[GOLD] = float(np.mean(self.gold([p.prompt for p in rows], texts, metas)))
        zero_std = zero_std_groups(info.rewards, g)
        metrics.update({"frac_reward_zero_std": float(zero_std.mean()),
                        "completions/mean_length": float(rollout.lengths.mean()),
                        "completions/max_length": float(rollout.lengths.max())})
        self._watch(zero_std, rollout.finish_reason == FINISH_LENGTH)
        if rl.refill_rounds and zero_std.any():
            sampled, refill_metrics = self._refill(params, sampled)
            metrics.update(refill_metrics)
            rollout, texts, rows, metas, info = sampled
        metrics["time/rollout"] = time.perf_counter() - timer
        if self.sample_every and self.iteration % self.sample_every == 0:
            self.run.tracker.log_samples(self.iteration, [
                {"prompt": p.prompt, "completion": t, "reward": f"{r:.2f}"}
                for p, t, r in zip(rows[::g], texts[::g], info.rewards[::g])])

        batch = learner_batch(rollout)
        if rl.algorithm == "rft":
            state, learner = self._rft_updates(state, batch, info.correct, rollout.lengths)
        else:
            ref = None
            if self.reference is not None:
                timer = time.perf_counter()
                ref = self._reference(batch)
                metrics["time/reference"] = time.perf_counter() - timer
                # Σ_t (log π - log π_ref) over each sampled completion: the sequence KL's
                # unbiased estimate, the x axis of the over-optimisation plot.
                metrics[KL] = float(((batch["old_logprobs"] - ref) * batch["loss_mask"])
                                    .sum(1).mean())
            if rl.algorithm == "ppo":
                metrics.update(self._add_ppo_targets(state, batch, info.rewards, ref))
            else:
                batch["advantages"] = advantages(info.rewards, g, rl.advantage)
                if rl.kl_coef:
                    batch["ref_logprobs"] = ref
            state, learner = self._policy_updates(state, batch)
        metrics.update(learner)
        reason = self.stop_reason or (self.stop_rules.check(metrics) if self.stop_rules
                                      else None)
        if reason:
            log.warning("stopping at iteration %d: %s", self.iteration, reason)
            metrics["stop"] = 1.0
        return state, metrics

    def _reference(self, batch) -> np.ndarray:
        device = self.run.put_batch({"tokens": batch["tokens"], "present": batch["present"]})
        prompt_len = batch["tokens"].shape[1] - batch["loss_mask"].shape[1]
        return np.asarray(jax.device_get(self._reference_logprobs(
            self.reference.params, device["tokens"], device["present"], prompt_len)))

    def _add_ppo_targets(self, state, batch, scores, ref) -> dict[str, float]:
        """The critic's values, GAE advantages and returns of the rollout, into `batch`."""
        timer = time.perf_counter()
        inputs = {k: batch[k] for k in ("tokens", "present", "loss_mask", "old_logprobs")}
        inputs["scores"] = np.asarray(scores, np.float32)
        if ref is not None and self.rl.kl_coef:
            inputs["ref_logprobs"] = ref
        prompt_len = batch["tokens"].shape[1] - batch["loss_mask"].shape[1]
        out = jax.device_get(self._ppo_targets(state.params[CRITIC], self.run.put_batch(inputs),
                                               prompt_len))
        batch.update({k: np.asarray(v) for k, v in out.items() if k != "rewards"})
        mask = batch["loss_mask"]
        tokens = max(float(mask.sum()), 1.0)
        return {"time/critic": time.perf_counter() - timer,
                # the KL penalty a completion paid in all, TRL's objective/non_score_reward
                "non_score_reward": float((out["rewards"] * mask).sum(1).mean()
                                          - inputs["scores"].mean()),
                "values/mean": float((out["old_values"] * mask).sum() / tokens),
                "returns/mean": float((out["returns"] * mask).sum() / tokens)}

    def _updates(self, state, minibatches):
        timer, sums, finite, updates = time.perf_counter(), {}, 1.0, 0
        for mb in minibatches:
            updates += 1
            mb = trim_completions(mb)
            state, m = self.step_fn(state, self.run.put_batch(mb))
            m = {k: float(v) for k, v in jax.device_get(m).items()}
            finite = min(finite, m.pop("finite", 1.0))
            m["learner/completion_slots"] = float(mb["loss_mask"].shape[1])
            for k, v in m.items():
                sums.setdefault(k, []).append(v)
        metrics = {k: float(np.mean(v)) for k, v in sums.items()}
        metrics.update({"finite": finite, "updates": float(updates),
                        "time/learner": time.perf_counter() - timer})
        return state, metrics

    def _policy_updates(self, state, batch):
        rng = np.random.default_rng([self.seed, self.iteration])
        rows = len(batch["loss_mask"])
        # Rows with advantage 0 carry no gradient unless a KL term pulls on them.
        skip = self.rl.skip_zero_advantage and self.rl.algorithm == "policy_gradient" \
            and not self.rl.kl_coef
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

        state, metrics = self._updates(state, minibatches())
        if skip:
            metrics["learner/rows_kept"] = float(np.mean(kept))
        return state, metrics

    def _rft_updates(self, state, batch, correct, lengths):
        kept = rft_rows(correct, lengths, self.rl.group_size, self.rl.rft_keep)
        metrics = {"rft/kept": float(len(kept))}
        if not len(kept):  # nothing correct this time: no update, the optimizer is untouched
            return state, metrics
        mb = pad_rows(take(batch, kept), bucket_rows(len(kept),
                                                     self.run.batch_sharding.num_devices))
        state, learner = self._updates(state, (mb for _ in range(self.rl.epochs)))
        return state, {**metrics, **learner}

    def _watch(self, zero_std: np.ndarray, truncated: np.ndarray) -> None:
        stuck = bool(zero_std.all() or truncated.all())
        self.stuck = self.stuck + 1 if stuck else 0
        if self.rl.warn_after and self.stuck == self.rl.warn_after:
            why = ("every completion was truncated at max_new_tokens"
                   if truncated.all() else "every group's samples got the same reward")
            log.warning("!!! NOTHING TO LEARN for %d iterations: %s, so every advantage is 0. "
                        "Check the task's difficulty, rl.max_new_tokens, rl.temperature and the "
                        "reward.", self.stuck, why)


def main(config: ml_collections.ConfigDict, run_dir: Path) -> dict[str, float]:
    """Train (or resume) the RL run in `run_dir`; returns the final held-out metrics."""
    rl = config.rl
    if rl.algorithm not in ALGORITHMS:
        raise ConfigError(f"rl.algorithm={rl.algorithm!r}; choose from {ALGORITHMS}")
    rows = rl.prompts_per_iteration * rl.group_size
    if rl.epochs < 1 or rl.minibatches < 1 or rows % rl.minibatches:
        raise ConfigError(f"rl.minibatches={rl.minibatches}, rl.epochs={rl.epochs}: each "
                          f"iteration's {rows} completions (rl.prompts_per_iteration × "
                          "rl.group_size) must split into rl.minibatches equal parts, at least "
                          "one, for at least one epoch")
    if config.optim.grad_accum != 1:
        # Each minibatch is one update already; the learner's row buckets and the whole
        # minibatch's loss weight are not split into micro-batches.
        raise ConfigError(f"optim.grad_accum={config.optim.grad_accum}: the RL stage makes "
                          "one update per minibatch; split the work with rl.minibatches")
    if rl.algorithm == "ppo" and config.lora.rank:
        raise ConfigError("lora.rank: PPO trains the policy and its critic in full; set "
                          "--config.lora.rank=0")
    loss_cfg = _loss_config(rl)
    with start_run(config, run_dir, stage="rl") as run:
        tokenizer = run.parent_tokenizer()
        template = chat_template_for(run.dir.path, rl.system or None)
        train_task, heldout = make_tasks(rl.task)
        schedule = ProblemSchedule(train_task, rl.prompts_per_iteration, config.train.steps,
                                   rl.task.seed)
        reward = make_reward(rl, train_task, run)
        gold = None
        if rl.gold:
            from llm_jax.recipes.gold import GoldLabeler

            gold = GoldLabeler()
        stop_rules = (StopRules(rl.kl_budget, rl.gold_patience)
                      if rl.kl_budget or rl.gold_patience else None)

        shards = run.batch_sharding.num_devices
        if rl.algorithm != "rft" and (rows // rl.minibatches) % shards:
            raise ConfigError(f"rl.minibatches={rl.minibatches}: a minibatch of "
                              f"{rows // rl.minibatches} completions does not split over the "
                              f"mesh's {shards} data-parallel shards")
        model_cfg = run.model_config(tokenizer.vocab_size)
        model = Transformer(model_cfg)
        per_iteration = rl.epochs * (1 if rl.algorithm == "rft" else rl.minibatches)
        optimizer, schedule_fn = optimizer_from_config(config, config.train.steps * per_iteration)
        critic = Critic(model_cfg) if rl.algorithm == "ppo" else None
        if critic is None:
            state, shardings, start = run.init_state(model_cfg, optimizer)
        else:  # {"policy", "critic"} params, the critic a copy of the parent's backbone
            state, shardings, start = init_actor_critic(run, model_cfg, critic, optimizer)
        wants_reference = rl.algorithm != "rft" and (rl.kl_coef or rl.track_kl)
        # The frozen reference: for the KL penalty, or only to log the KL (rl.track_kl).
        reference = (reference_role(run, model_cfg, kl_coef=rl.kl_coef or 1.0)
                     if wants_reference else None)

        # under LoRA: adapters on a frozen base, the sampler sees merged weights
        loss_fn, jit_step, full_params = run.trained(make_rl_loss(
            model, rl.algorithm, loss_cfg, critic=critic, vf_coef=rl.vf_coef,
            value_clip=rl.value_clip))
        if critic is not None:  # PPO (never LoRA): the sampler sees the policy's subtree
            full_params = lambda p: p[POLICY]  # noqa: E731
        step_fn = jit_step(make_train_step(
            loss_fn, optimizer, skip_nonfinite=config.train.on_nonfinite == "skip",
            lr_schedule=schedule_fn), shardings)

        sampler = Sampler(model, mesh=run.mesh, rules=run.rules)
        tools = make_tools(tokenizer, config.tools.to_dict()) if rl.tools else None
        iteration = RLIteration(config=config, run=run, model=model, sampler=sampler,
                                tokenizer=tokenizer, template=template, tools=tools,
                                schedule=schedule, reward=reward, step_fn=step_fn,
                                reference=reference, full_params=full_params, start=start,
                                gold=gold, stop_rules=stop_rules, critic=critic)
        eval_tokens = rl.eval_max_new_tokens or rl.max_new_tokens
        if rl.task.source != "rlhf":  # problems with answers: accuracy and pass@k
            heldout_eval = make_problem_evaluator(
                sampler, tokenizer, template, heldout, train_task.is_correct,
                max_new_tokens=eval_tokens, samples=rl.eval_samples, ks=tuple(rl.eval_ks),
                temperature=rl.temperature, tools=tools)
        else:  # nothing to check: score held-out replies with the reward (and the gold judge)
            judges = {"proxy_reward": reward} | ({"gold_reward": gold} if gold else {})
            heldout_eval = make_reward_evaluator(sampler, tokenizer, template, heldout, judges,
                                                 max_new_tokens=eval_tokens)
        final_metrics: dict[str, float] = {}

        def evaluate(params):
            final_metrics.update(heldout_eval(full_params(params)))
            if stop_rules is not None:
                iteration.stop_reason = iteration.stop_reason or stop_rules.check(final_metrics)
            if gold is not None and jax.process_index() == 0:
                plot_overoptimization(run.dir.metrics, run.dir.path / OVEROPTIMIZATION_PLOT)
            return final_metrics

        tokens = rl.prompts_per_iteration * rl.group_size * rl.max_new_tokens
        loop_cfg = run.loop_config(tokens_per_iteration=tokens)
        run.train(state, iteration, loop_cfg, start=start, evaluate=evaluate)
    return final_metrics
