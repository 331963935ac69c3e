"""RL learners, one per algorithm, registered by name (`rl.algorithm`).

    cls = learner_class(config.rl.algorithm)
    cls.check_config(config)                    # before the run starts
    learner = cls(config, run, model_cfg)        # builds its state and its jitted step
    state, metrics = learner.update(state, experience, iteration)

A learner owns its loss and its updates; the rollout (`llm_jax.rl.rollout`) and the loop know
nothing of which one runs. A new algorithm is one module here that subclasses `Learner` and
registers itself, plus a config preset in configs/rl.py.
"""

from llm_jax.rl.learners import policy_gradient, ppo, rft  # noqa: F401  (they register)
from llm_jax.rl.learners.base import LEARNERS, Learner, learner_class

__all__ = ["LEARNERS", "Learner", "learner_class"]
