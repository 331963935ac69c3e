"""What every RL learner shares: its train state and step, and running a pass of updates."""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Iterable
from typing import ClassVar

import jax
import ml_collections
import numpy as np

from llm_jax.errors import ConfigError
from llm_jax.losses.policy import PolicyLossConfig
from llm_jax.models.config import ModelConfig
from llm_jax.models.transformer import Transformer
from llm_jax.rl.experience import Experience, trim_completions

LEARNERS: dict[str, type[Learner]] = {}


def register(name: str):
    def add(cls: type[Learner]) -> type[Learner]:
        cls.name = name
        LEARNERS[name] = cls
        return cls
    return add


def learner_class(algorithm: str) -> type[Learner]:
    if algorithm not in LEARNERS:
        raise ConfigError(f"rl.algorithm={algorithm!r}; choose from {tuple(LEARNERS)}")
    return LEARNERS[algorithm]


def logprob_temperature(rl: ml_collections.ConfigDict) -> float:
    """The temperature of the policy whose log-probs the ratio, gradient and KL use: the
    sampling temperature with `rl.tempered_logprobs` (TRL's convention), else 1."""
    return rl.temperature if rl.tempered_logprobs and rl.temperature > 0 else 1.0


def loss_config(rl: ml_collections.ConfigDict, kl_coef: float) -> PolicyLossConfig:
    try:
        return PolicyLossConfig(eps_low=rl.eps_low, eps_high=rl.eps_high, kl_coef=kl_coef,
                                kl_bias_correction=rl.kl_bias_correction,
                                aggregation=rl.aggregation,
                                max_completion_length=rl.max_new_tokens,
                                importance=rl.importance, seq_eps_low=rl.seq_eps_low,
                                seq_eps_high=rl.seq_eps_high)
    except ValueError as e:
        raise ConfigError(f"rl: {e}") from None


class Learner(abc.ABC):
    """Loss and updates of one algorithm over a run's train state.

    Attributes: `state`, `start` (restored iteration), `step_fn` (jitted update) and
    `sampler_params(params)` (what the sampler sees: merged LoRA, or PPO's policy)."""

    name: ClassVar[str]

    def __init__(self, config: ml_collections.ConfigDict, run, model_cfg: ModelConfig):
        self.config, self.rl, self.run = config, config.rl, run
        self.seed = config.run.seed
        self.model = Transformer(model_cfg)
        optimizer, lr_schedule = run.optimizer(self.updates_per_iteration)
        self.state, shardings, self.start = self.init_state(model_cfg, optimizer)
        self.step_fn, self.sampler_params = run.update_step(self.loss(), optimizer, lr_schedule,
                                                            shardings)

    # ---------------------------------------------------------------- what subclasses give
    uses_reference: ClassVar[bool] = True  # whether a KL term may need the reference model

    @property
    def updates_per_iteration(self) -> int:
        return self.rl.epochs * self.rl.minibatches

    @classmethod
    def check_config(cls, config: ml_collections.ConfigDict) -> None:
        """Raise `ConfigError` for settings this learner cannot run (before the run starts)."""
        rl = config.rl
        if rl.epochs < 1 or rl.minibatches < 1:
            raise ConfigError(f"rl.epochs={rl.epochs}, rl.minibatches={rl.minibatches}: "
                              "each must be at least 1")
        if rl.step_credit and rl.algorithm != "policy_gradient":
            raise ConfigError(f"rl.step_credit is for the GRPO family (rl.algorithm="
                              f"policy_gradient), not rl.algorithm={rl.algorithm}")
        if config.optim.grad_accum != 1:
            # Each minibatch is one update already; the learner's row buckets and the whole
            # minibatch's loss weight are not split into micro-batches.
            raise ConfigError(f"optim.grad_accum={config.optim.grad_accum}: the RL stage "
                              "makes one update per minibatch; split the work with "
                              "rl.minibatches")

    def init_state(self, model_cfg: ModelConfig, optimizer):
        return self.run.init_state(model_cfg, optimizer)

    @abc.abstractmethod
    def loss(self) -> Callable:
        """`loss_fn(params, batch, rng) -> (loss, aux)` over the state's params."""

    @abc.abstractmethod
    def update(self, state, experience: Experience, iteration: int):
        """(state, metrics) after this iteration's updates on `experience`."""

    # ---------------------------------------------------------------- shared
    def run_updates(self, state, minibatches: Iterable[dict[str, np.ndarray]]):
        """One jitted step per minibatch (trimmed to its longest completion); the steps'
        metrics averaged, with `finite` the worst of them."""
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

