"""Mesh shapes resolve with -1; the start-up check flags large replicated params."""

import jax
import pytest

from llm_jax.sharding.mesh import check_params_sharded, resolve_mesh_shape
from tests.helpers import sharded_step, tiny_config


def test_resolve_mesh_shape():
    assert resolve_mesh_shape({"data": -1}, 8) == (8, 1, 1)
    assert resolve_mesh_shape({"data": 2, "fsdp": -1, "tensor": 2}, 8) == (2, 2, 2)
    with pytest.raises(ValueError, match="needs 16 devices but 8"):
        resolve_mesh_shape({"data": 4, "fsdp": 4}, 8)
    with pytest.raises(ValueError, match="unknown mesh axes"):
        resolve_mesh_shape({"model": 2}, 8)
    with pytest.raises(ValueError, match="at most one axis may be -1"):
        resolve_mesh_shape({"data": -1, "fsdp": -1}, 8)


def test_replicated_params_are_reported():
    cfg = tiny_config("gpt2")
    replicated, _, _ = sharded_step(cfg, {"data": -1}, "dp")
    flagged = check_params_sharded(replicated.params, min_size=1024)
    assert any("embed" in name for name in flagged)
    sharded, _, _ = sharded_step(cfg, {"fsdp": -1}, "fsdp")
    assert check_params_sharded(sharded.params, min_size=1024) == []
    assert jax.device_count() == 8
