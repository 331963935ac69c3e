"""RL learners, one per algorithm, registered by name (`rl.algorithm`).

    learner = learner_class(config.rl.algorithm)(config, run, model_cfg)
    state, metrics = learner.update(state, experience, iteration)

A new algorithm is one module here subclassing `Learner`, plus a preset in configs/rl.py."""

from llm_jax.rl.learners import policy_gradient, ppo, rft  # noqa: F401  (they register)
from llm_jax.rl.learners.base import LEARNERS, Learner, learner_class

__all__ = ["LEARNERS", "Learner", "learner_class"]
