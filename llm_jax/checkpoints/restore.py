"""Params out of a training checkpoint, straight into their target shardings (the optimizer
state is never read)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp
from flax import linen as nn

from llm_jax.errors import CheckpointError


def abstract_tree(init: Callable[[jax.Array], Any], shardings=None):
    """ShapeDtypeStructs of the (logically boxed) params `init(rng)` makes, nothing computed,
    placed with `shardings` (default: the first device): a restore target."""
    shapes = jax.eval_shape(lambda rng: nn.meta.unbox(init(rng)), jax.random.PRNGKey(0))
    if shardings is None:
        device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
        shardings = jax.tree.map(lambda _: device, shapes)
    return jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
                        shapes, shardings)


def restore_params(directory: str | Path, abstract_params, step: int | None = None
                   ) -> tuple[Any, int]:
    """Only the params of a train-state checkpoint (newest, or `step`), into `abstract_params`."""
    manager = ocp.CheckpointManager(Path(directory).absolute())
    step = manager.latest_step() if step is None else step
    if step is None:
        raise CheckpointError(f"no checkpoint in {directory}")
    target = {"params": abstract_params}
    restore_args = jax.tree.map(lambda s: ocp.ArrayRestoreArgs(sharding=s.sharding), target)
    restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
        item=target, restore_args=restore_args, partial_restore=True)))
    manager.close()
    return restored["state"]["params"], step
