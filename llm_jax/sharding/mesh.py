"""Build the device mesh, start multi-host JAX, and turn logical annotations into shardings."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping

import jax
import numpy as np
from flax import linen as nn
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from llm_jax.sharding.rules import BATCH_AXES, MESH_AXES

log = logging.getLogger(__name__)


def maybe_initialize_distributed() -> None:
    """Join a multi-host job when the environment describes one; a no-op on one host.

    TPU pods and SLURM are detected by JAX itself; a generic cluster sets
    COORDINATOR_ADDRESS, NUM_PROCESSES and PROCESS_ID.
    """
    if jax.distributed.is_initialized():
        return
    if "COORDINATOR_ADDRESS" in os.environ:
        jax.distributed.initialize(
            coordinator_address=os.environ["COORDINATOR_ADDRESS"],
            num_processes=int(os.environ["NUM_PROCESSES"]),
            process_id=int(os.environ["PROCESS_ID"]))
    elif "SLURM_JOB_ID" in os.environ and int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        jax.distributed.initialize()
    elif os.environ.get("TPU_WORKER_HOSTNAMES", "").count(",") > 0:
        jax.distributed.initialize()


def resolve_mesh_shape(shape: Mapping[str, int], n_devices: int) -> tuple[int, ...]:
    """Sizes for ("data", "fsdp", "tensor"); one entry may be -1 meaning "all the rest"."""
    unknown = set(shape) - set(MESH_AXES)
    if unknown:
        raise ValueError(f"unknown mesh axes {sorted(unknown)}; the mesh axes are {MESH_AXES}")
    sizes = [int(shape.get(a, 1)) for a in MESH_AXES]
    if sizes.count(-1) > 1:
        raise ValueError(f"mesh {dict(shape)}: at most one axis may be -1")
    known = int(np.prod([s for s in sizes if s != -1]))
    if -1 in sizes:
        if n_devices % known:
            raise ValueError(f"mesh {dict(shape)} does not divide {n_devices} devices")
        sizes[sizes.index(-1)] = n_devices // known
    if int(np.prod(sizes)) != n_devices:
        raise ValueError(f"mesh {dict(zip(MESH_AXES, sizes))} needs {int(np.prod(sizes))} "
                         f"devices but {n_devices} are available")
    return tuple(sizes)


def make_mesh(shape: Mapping[str, int], devices=None) -> Mesh:
    """A mesh over `devices` (default: all) with auto (pjit-style) sharded axes."""
    devices = list(devices if devices is not None else jax.devices())
    sizes = resolve_mesh_shape(shape, len(devices))
    return jax.make_mesh(sizes, MESH_AXES, axis_types=(AxisType.Auto,) * len(MESH_AXES),
                         devices=devices)


def logical_shardings(abstract_tree, mesh: Mesh, rules):
    """NamedShardings for a (boxed, abstract) pytree whose leaves carry logical axis names."""
    specs = nn.get_partition_spec(abstract_tree)
    return nn.logical_to_mesh_sharding(specs, mesh, rules)


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) dimension over the data-parallel axes, everything else replicated."""
    return NamedSharding(mesh, PartitionSpec(BATCH_AXES))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def check_params_sharded(params, min_size: int = 2**16) -> list[str]:
    """Names of large parameters held whole on every device while the mesh has >1 device.

    Called at start-up: a rule-set typo that silently replicates a billion parameters should
    be a loud warning, not an out-of-memory hours later.
    """
    problems = []
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        sharding = getattr(leaf, "sharding", None)
        if sharding is None or leaf.size < min_size or len(sharding.device_set) < 2:
            continue
        if sharding.is_fully_replicated:
            problems.append(jax.tree_util.keystr(path))
    return problems


def mesh_context(mesh: Mesh, rules) -> contextlib.ExitStack:
    """`with mesh_context(mesh, rules):` makes logical constraints resolve on this mesh."""
    stack = contextlib.ExitStack()
    stack.enter_context(jax.set_mesh(mesh))
    stack.enter_context(nn.logical_axis_rules(rules))
    return stack
