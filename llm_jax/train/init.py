"""Create a `TrainState` directly sharded over the mesh: no full copy on any one device."""

from __future__ import annotations

from collections.abc import Callable

import jax
import optax
from flax import linen as nn

from llm_jax.sharding.mesh import logical_shardings
from llm_jax.train.state import TrainState


def init_train_state(init_params: Callable[[jax.Array], dict],
                     optimizer: optax.GradientTransformation, rng: jax.Array, mesh, rules
                     ) -> tuple[TrainState, TrainState]:
    """(state, state_shardings). `init_params(rng)` returns logically-boxed params.

    The shardings come from `jax.eval_shape` of the boxed state (optimizer moments inherit the
    params' logical names); the real init then runs under `jit(out_shardings=...)`.
    """
    param_rng, state_rng = jax.random.split(rng)

    def boxed_state():
        return TrainState.create(init_params(param_rng), optimizer, state_rng)

    with nn.logical_axis_rules(rules):
        shardings = logical_shardings(jax.eval_shape(boxed_state), mesh, rules)
    state = jax.jit(lambda: nn.meta.unbox(boxed_state()), out_shardings=shardings)()
    return state, shardings
