"""The SFT loss on packed conversations: an all-masked batch is loss 0 with finite gradients,
and packed rows give the same logits and losses as each conversation alone."""

import jax
import jax.numpy as jnp
import numpy as np

from llm_jax.losses.lm import make_lm_loss, masked_cross_entropy
from tests.helpers import random_params, tiny_config


def _apply(model):
    return lambda p, t, pos, seg: model.apply({"params": p}, t, pos, seg)


def test_all_masked_batch_is_zero_loss_with_finite_gradients():
    model, params = random_params(tiny_config("llama"))
    rng = np.random.default_rng(0)
    batch = {"inputs": rng.integers(4, 128, (2, 16)), "targets": rng.integers(4, 128, (2, 16)),
             "segment_ids": np.ones((2, 16), np.int32),
             "positions": np.tile(np.arange(16), (2, 1)),
             "loss_mask": np.zeros((2, 16), np.int32)}
    batch = {k: jnp.asarray(v) for k, v in batch.items()}
    (loss, aux), grads = jax.value_and_grad(make_lm_loss(_apply(model)), has_aux=True)(
        params, batch, None)
    assert float(loss) == 0.0 and float(aux["weight"]) == 0.0
    assert all(bool(jnp.isfinite(g).all()) for g in jax.tree.leaves(grads))
    assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(grads))


def test_packed_rows_equal_each_conversation_alone():
    model, params = random_params(tiny_config("llama"))
    forward = jax.jit(_apply(model))
    rng = np.random.default_rng(1)
    lengths = (9, 14, 7)
    convs = [rng.integers(4, 128, n + 1) for n in lengths]  # ids; inputs/targets shifted
    masks = [rng.integers(0, 2, n) for n in lengths]
    seq = 32
    inputs, targets = np.zeros((1, seq), np.int32), np.zeros((1, seq), np.int32)
    seg, pos, mask = (np.zeros((1, seq), np.int32) for _ in range(3))
    at = 0
    for i, (ids, m) in enumerate(zip(convs, masks)):
        n = len(m)
        inputs[0, at:at + n], targets[0, at:at + n] = ids[:-1], ids[1:]
        seg[0, at:at + n], pos[0, at:at + n], mask[0, at:at + n] = i + 1, np.arange(n), m
        at += n
    packed = np.asarray(forward(params, inputs, pos, seg))
    at, total_nll, total_tokens = 0, 0.0, 0.0
    for ids, m in zip(convs, masks):
        n = len(m)
        alone = np.asarray(forward(params, ids[None, :-1], np.arange(n)[None], None))
        np.testing.assert_allclose(packed[0, at:at + n], alone[0], atol=1e-5)
        loss, count = masked_cross_entropy(jnp.asarray(alone), jnp.asarray(ids[None, 1:]),
                                           jnp.asarray(m[None]))
        total_nll += float(loss) * float(count)
        total_tokens += float(count)
        at += n
    packed_loss, _ = masked_cross_entropy(jnp.asarray(packed), jnp.asarray(targets),
                                          jnp.asarray(mask))
    np.testing.assert_allclose(float(packed_loss), total_nll / total_tokens, rtol=1e-6)
