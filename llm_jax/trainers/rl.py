"""RL on verifiable rewards and on a reward model: GRPO and its variants, PPO, rejection sampling.

Tunix's split: roles (`rl/roles.py`), a rollout worker, and the learner `rl.algorithm` names.

    llm-jax train experiments/grpo_math_tiny.py      # from runs/sft_tiny/default"""

from __future__ import annotations

import logging
from pathlib import Path

import jax
import ml_collections

from llm_jax.checkpoints.sources import chat_template_for
from llm_jax.eval.registry import build_evaluators
from llm_jax.generate.sampler import Sampler
from llm_jax.generate.tools import make_tools
from llm_jax.recipes.math.schedule import ProblemSchedule, make_tasks
from llm_jax.rl.learners import Learner, learner_class
from llm_jax.rl.overoptimization import StopRules, plot_overoptimization
from llm_jax.rl.roles import build_roles
from llm_jax.rl.rollout import RolloutWorker
from llm_jax.train.setup import start_run

log = logging.getLogger(__name__)
OVEROPTIMIZATION_PLOT = "overoptimization.png"


class RLIteration:
    """`iteration(state) -> (state, metrics)`: one rollout, one learner update. The iteration
    number is its only state (the rollout's problems and random streams follow from it)."""

    def __init__(self, rollouts: RolloutWorker, learner: Learner, start: int):
        self.rollouts, self.learner, self.iteration = rollouts, learner, start

    def __call__(self, state):
        self.iteration += 1
        experience, metrics = self.rollouts(self.learner.sampler_params(state.params),
                                            self.iteration)
        state, learned = self.learner.update(state, experience, self.iteration)
        return state, {**metrics, **learned}


def main(config: ml_collections.ConfigDict, run_dir: Path) -> dict[str, float]:
    """Train (or resume) the RL run in `run_dir`; returns the final held-out metrics."""
    rl = config.rl
    learner_cls = learner_class(rl.algorithm)
    learner_cls.check_config(config)
    with start_run(config, run_dir, stage="rl") as run:
        tokenizer = run.parent_tokenizer()
        template = chat_template_for(run.dir.path, rl.system or None)
        train_task, heldout = make_tasks(rl.task)
        schedule = ProblemSchedule(train_task, rl.prompts_per_iteration, config.train.steps,
                                   rl.task.seed)
        model_cfg = run.model_config(tokenizer.vocab_size)
        learner = learner_cls(config, run, model_cfg)
        roles = build_roles(config, run, model_cfg, train_task, policy=learner.model,
                            wants_reference=learner.uses_reference)
        sampler = Sampler(roles.policy, mesh=run.mesh, rules=run.rules)
        tools = make_tools(tokenizer, config.tools.to_dict()) if rl.tools else None
        rollouts = RolloutWorker(config, run, roles, sampler, tokenizer, template, tools,
                                 schedule)
        # held-out accuracy and pass@k, or (RLHF) the replies' reward and gold score
        heldout_eval = build_evaluators(
            config, sampler=sampler, tokenizer=tokenizer, template=template,
            heldout_problems=heldout, task=train_task, tools=tools,
            rollout_tokens=rl.max_new_tokens, temperature=rl.temperature,
            judges={"proxy_reward": roles.reward} | ({"gold_reward": roles.gold}
                                                     if roles.gold else {}))

        def evaluate(params):
            metrics = heldout_eval(learner.sampler_params(params))
            if roles.gold is not None and jax.process_index() == 0:
                plot_overoptimization(run.dir.metrics, run.dir.path / OVEROPTIMIZATION_PLOT)
            return metrics

        stop_rules = (StopRules(rl.kl_budget, rl.gold_patience)
                      if rl.kl_budget or rl.gold_patience else None)
        tokens = rl.prompts_per_iteration * rl.group_size * rl.max_new_tokens
        return run.train(learner.state, RLIteration(rollouts, learner, learner.start),
                         run.loop_config(tokens_per_iteration=tokens), start=learner.start,
                         evaluate=evaluate, should_stop=stop_rules.check if stop_rules else None)
