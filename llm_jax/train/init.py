"""Create a `TrainState` directly sharded over the mesh: no full copy on any one device.

    abstract, shardings = state_shardings(init_params, optimizer, mesh, rules)
    state = init_train_state(init_params, optimizer, rng, shardings)        # random init
    state = state_from_params(params, optimizer, rng, shardings)           # given params"""

from __future__ import annotations

from collections.abc import Callable

import jax
import optax
from flax import linen as nn

from llm_jax.sharding.mesh import logical_shardings
from llm_jax.train.state import TrainState


def _split(rng: jax.Array) -> tuple[jax.Array, jax.Array]:
    param_rng, state_rng = jax.random.split(rng)
    return param_rng, state_rng


def state_shardings(init_params: Callable[[jax.Array], dict],
                    optimizer: optax.GradientTransformation, mesh, rules
                    ) -> tuple[TrainState, TrainState]:
    """(abstract unboxed state, state shardings) for `init_params(rng)` (logically boxed)."""

    def boxed_state():
        return TrainState.create(init_params(jax.random.PRNGKey(0)), optimizer,
                                 jax.random.PRNGKey(0))

    with nn.logical_axis_rules(rules):
        shardings = logical_shardings(jax.eval_shape(boxed_state), mesh, rules)
        shapes = jax.eval_shape(lambda: nn.meta.unbox(boxed_state()))
    abstract = jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
                            shapes, shardings)
    return abstract, shardings


def init_train_state(init_params: Callable[[jax.Array], dict],
                     optimizer: optax.GradientTransformation, rng: jax.Array, mesh, rules,
                     shardings: TrainState | None = None) -> tuple[TrainState, TrainState]:
    """(state, state_shardings) from a random init; `init_params(rng)` returns boxed params."""
    if shardings is None:
        _, shardings = state_shardings(init_params, optimizer, mesh, rules)
    param_rng, state_rng = _split(rng)

    def build():
        return nn.meta.unbox(TrainState.create(init_params(param_rng), optimizer, state_rng))

    with nn.logical_axis_rules(rules):
        state = jax.jit(build, out_shardings=shardings)()
    return state, shardings


def state_from_params(params, optimizer: optax.GradientTransformation, rng: jax.Array,
                      shardings: TrainState) -> TrainState:
    """A fresh state (zero step, new optimizer moments) around `params` that already sit on
    the mesh with `shardings.params`; nothing is gathered."""
    _, state_rng = _split(rng)
    build = jax.jit(lambda p: TrainState.create(p, optimizer, state_rng),
                    in_shardings=(shardings.params,), out_shardings=shardings)
    return build(params)
