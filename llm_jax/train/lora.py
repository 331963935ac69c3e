"""Training LoRA adapters on a frozen base: the pieces a trainer and `export` need.

    lora = LoraTraining(cfg, base, base_shardings, batch_sharding)   # built by Run.init_state
    step_fn = lora.jit_step(make_train_step(lora.loss(loss_fn), optimizer), shardings)

The state's params are the adapters alone; the base is a jit argument, never saved, re-read
from the parent recorded in `config.json`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax

from llm_jax.models.lora import LoraConfig, adapted, merge
from llm_jax.train.step import jit_train_step


@dataclasses.dataclass
class LoraTraining:
    """The frozen base with its shardings, and how a stage's loss and step use it."""

    cfg: LoraConfig
    base: dict
    base_shardings: dict
    batch_sharding: jax.sharding.Sharding

    def loss(self, loss_fn: Callable) -> Callable:
        """`loss_fn` of the full model → `(adapters, batch, rng, base)`."""

        def lora_loss(adapters, batch, rng, base):
            drop_rng, rng = jax.random.split(rng)
            with adapted(adapters, self.cfg, drop_rng):
                return loss_fn(jax.lax.stop_gradient(base), batch, rng)

        return lora_loss

    def jit_step(self, train_step: Callable, shardings) -> Callable:
        """`(state, batch) -> (state, metrics)` compiled with the base as a frozen input."""
        return jit_train_step(train_step, shardings, self.batch_sharding, frozen=(self.base,),
                              frozen_shardings=(self.base_shardings,))

    def merged(self, adapters) -> dict:
        """Plain params W + s·A·B, laid out like the base (for evals, sampling, export)."""
        if not hasattr(self, "_merge"):
            self._merge = jax.jit(lambda b, a: merge(b, a, self.cfg),
                                  out_shardings=self.base_shardings)
        return self._merge(self.base, adapters)
