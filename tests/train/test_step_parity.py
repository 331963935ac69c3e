"""One train step on 1 device equals the same step on 8 devices; accumulation equals one batch."""

import jax
import numpy as np
import pytest

from tests.helpers import random_packed_batch, sharded_step, tiny_config


def _params_close(a, b, tol):
    for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=tol, rtol=0,
                                   err_msg=jax.tree_util.keystr(path))


@pytest.mark.parametrize("flavour", ["gpt2", "llama"])
@pytest.mark.parametrize("mesh_shape,rule_name", [
    ({"data": 1, "fsdp": 8, "tensor": 1}, "fsdp"),
    ({"data": 1, "fsdp": 4, "tensor": 2}, "fsdp_tp"),
    ({"data": 2, "fsdp": 2, "tensor": 2}, "fsdp_tp"),
])
def test_one_device_equals_eight(flavour, mesh_shape, rule_name):
    # lr 1e-3: GPT-2's key bias has an exactly-zero true gradient, so Adam turns summation-order
    # noise (~1e-9) into updates proportional to lr; 1e-3 keeps that below the 1e-5 tolerance.
    cfg = tiny_config(flavour)
    batch = random_packed_batch(8, 32, cfg.vocab_size)
    one_state, one_step, _ = sharded_step(cfg, {"data": 1}, "dp", devices=jax.devices()[:1])
    many_state, many_step, _ = sharded_step(cfg, mesh_shape, rule_name)
    _params_close(one_state.params, many_state.params, 0)  # identical init, any sharding
    for _ in range(2):
        one_state, one_metrics = one_step(one_state, batch)
        many_state, many_metrics = many_step(many_state, batch)
        np.testing.assert_allclose(float(one_metrics["loss"]), float(many_metrics["loss"]),
                                   atol=1e-5)
        np.testing.assert_allclose(float(one_metrics["grad_norm"]),
                                   float(many_metrics["grad_norm"]), rtol=1e-5)
    _params_close(one_state.params, many_state.params, 1e-5)
    assert len(many_state.params["embed"]["embedding"].sharding.device_set) == 8


def test_params_really_sharded():
    cfg = tiny_config("llama")
    state, _, _ = sharded_step(cfg, {"data": 1, "fsdp": 4, "tensor": 2}, "fsdp_tp")
    q = state.params["block_0"]["attn"]["query"]["kernel"]  # [embed, heads, head_dim]
    shard_shapes = {s.data.shape for s in q.addressable_shards}
    assert shard_shapes == {(cfg.d_model // 4, cfg.n_heads // 2, cfg.head_size)}
    up = state.params["block_0"]["mlp"]["up"]["kernel"]  # [embed, mlp]
    assert {s.data.shape for s in up.addressable_shards} == {(cfg.d_model // 4, cfg.ff_size // 2)}
    mu = state.opt_state[1][0].mu["block_0"]["mlp"]["up"]["kernel"]  # Adam moments follow
    assert mu.sharding == up.sharding


def test_grad_accumulation_equals_full_batch():
    cfg = tiny_config("gpt2")
    batch = random_packed_batch(8, 32, cfg.vocab_size, seed=3)  # uneven token counts per row
    full_state, full_step, _ = sharded_step(cfg, {"data": 1}, "dp", devices=jax.devices()[:1])
    acc_state, acc_step, _ = sharded_step(cfg, {"data": 1}, "dp", devices=jax.devices()[:1],
                                          grad_accum=4)
    full_state, full_m = full_step(full_state, batch)
    acc_state, acc_m = acc_step(acc_state, batch)
    np.testing.assert_allclose(float(full_m["loss"]), float(acc_m["loss"]), atol=1e-6)
    np.testing.assert_allclose(float(full_m["grad_norm"]), float(acc_m["grad_norm"]), rtol=1e-5)
    _params_close(full_state.params, acc_state.params, 1e-6)
