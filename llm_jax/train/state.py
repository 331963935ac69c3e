"""`TrainState`: everything a training step reads and writes, as one immutable pytree."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct


@struct.dataclass
class TrainState:
    step: jnp.ndarray  # int32 scalar: optimizer updates applied so far
    params: Any
    opt_state: optax.OptState
    rng: jax.Array  # split once per step; checkpointed so a resumed run draws the same numbers

    @classmethod
    def create(cls, params, optimizer: optax.GradientTransformation, rng: jax.Array) -> TrainState:
        return cls(step=jnp.zeros((), jnp.int32), params=params,
                   opt_state=optimizer.init(params), rng=rng)
