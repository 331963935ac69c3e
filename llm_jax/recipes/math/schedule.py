"""The RL stage's training problems, held-out problems, and each iteration's problems.

    train_task, heldout = make_tasks(config.rl.task)
    problems = ProblemSchedule(train_task, per_iteration=8, iterations=40, seed=0)(iteration)"""

from __future__ import annotations

from itertools import islice

import ml_collections
import numpy as np

from llm_jax.data.global_batches import epoch_order
from llm_jax.errors import ConfigError
from llm_jax.recipes.math.sources import (
    ArithmeticTask,
    Gsm8kTask,
    ReasoningGymTask,
    stratified_heldout,
)
from llm_jax.recipes.math.task import AnswerTask, Problem


def make_tasks(cfg: ml_collections.ConfigDict) -> tuple[AnswerTask, list[Problem]]:
    """(training task, held-out problems) from `rl.task`; the two never share a question."""
    common = dict(seed=cfg.seed, heldout_fraction=cfg.heldout_fraction)
    try:
        if cfg.source == "arithmetic":
            train = ArithmeticTask(level=list(cfg.levels), split="train", **common)
            heldout = stratified_heldout(cfg.levels, cfg.eval_problems, **common)
            per_level = cfg.report_problems or len(heldout) // max(len(cfg.levels), 1)
            heldout += stratified_heldout(cfg.report_levels, cfg.eval_problems, report=True,
                                          per_level=per_level, **common)
            return train, heldout
        elif cfg.source == "reasoning_gym":
            make = lambda split: ReasoningGymTask(cfg.dataset, size=cfg.size, split=split,  # noqa: E731
                                                  **common)
            train, heldout = make("train"), make("heldout").problems()
        elif cfg.source == "rlhf":
            from llm_jax.recipes.gold import rlhf_prompts

            as_problem = lambda g: Problem(g.text, str(g.meta.get("answer", "")), g.meta)  # noqa: E731
            train = PromptTask([as_problem(g) for g in rlhf_prompts("train")])
            heldout = (as_problem(g) for g in rlhf_prompts("heldout"))
        elif cfg.source == "gsm8k":
            if not cfg.paths:
                raise ConfigError("rl.task.source=gsm8k needs rl.task.paths=(JSONL files)")
            make = lambda split: Gsm8kTask(list(cfg.paths), split=split,  # noqa: E731
                                           heldout_fraction=cfg.heldout_fraction)
            train, heldout = make("train"), make("heldout").problems()
        else:
            raise ConfigError(f"rl.task.source={cfg.source!r}; choose arithmetic, "
                              "reasoning_gym, gsm8k or rlhf")
        heldout = list(islice(heldout, cfg.eval_problems))
    except ValueError as e:
        raise ConfigError(f"rl.task: {e}") from None
    return train, heldout


class PromptTask(AnswerTask):
    """A fixed list of prompts (RLHF: nothing to check, a reward model judges the replies)."""

    name = "prompts"
    checkable = False

    def __init__(self, problems: list[Problem]):
        self._problems = problems

    def problems(self):
        return iter(self._problems)


class ProblemSchedule:
    """The training problems of iteration i: a fixed pool walked in seeded epochs, so the
    problems depend only on (seed, i) and a resumed run sees what an unbroken one would."""

    def __init__(self, task: AnswerTask, per_iteration: int, iterations: int, seed: int):
        self.pool = list(islice(task.problems(), max(per_iteration * iterations, 1)))
        if not self.pool:
            raise ConfigError("rl.task: the training split has no problems")
        self.per_iteration, self.seed = per_iteration, seed

    def refill(self, iteration: int, round_: int) -> list[Problem]:
        """`per_iteration` training problems for dynamic sampling's `round_` (1, 2, ...) of
        iteration i, drawn from the pool by (seed, i, round): a resumed run draws the same."""
        rng = np.random.default_rng([self.seed, iteration, round_, 1])
        return [self.pool[k] for k in rng.choice(len(self.pool), self.per_iteration)]

    def __call__(self, iteration: int) -> list[Problem]:
        return [self.pool[i] for i in epoch_order(self.seed, len(self.pool), (iteration - 1)
                                                  * self.per_iteration, self.per_iteration)]
