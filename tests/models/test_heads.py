"""Reward head: read at the last real token, so padding (right or left) changes nothing; value
head: one fp32 scalar per token; both kernels partitioned ("embed", None)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from llm_jax.generate.logprobs import positions_from_mask
from llm_jax.models.heads import RewardHead, ValueHead, last_real_index
from tests.helpers import random_params, tiny_config

LENGTHS = (7, 3, 10)


@pytest.fixture(scope="module")
def setup():
    cfg = tiny_config("llama")
    model, params = random_params(cfg, seed=2)
    head = RewardHead(cfg.d_model)
    head_params = head.init(jax.random.PRNGKey(1), jnp.zeros((1, 2, cfg.d_model)),
                            jnp.ones((1, 2)))["params"]
    head_params = nn.meta.unbox(head_params)
    head_params["score"]["bias"] = jnp.full((1,), 0.3)  # nonzero, so a missing bias shows
    rng = np.random.default_rng(0)
    docs = [rng.integers(4, cfg.vocab_size, n) for n in LENGTHS]

    @jax.jit
    def reward(tokens, mask):
        positions = positions_from_mask(mask)
        features = model.apply({"params": params}, tokens, positions, mask, features_only=True)
        return head.apply({"params": head_params}, features, mask), features

    return docs, reward, head_params


def _batch(docs, width, left=False, pad_token=0):
    tokens = np.full((len(docs), width), pad_token, np.int32)
    mask = np.zeros((len(docs), width), np.int32)
    for row, doc in enumerate(docs):
        cols = slice(width - len(doc), width) if left else slice(0, len(doc))
        tokens[row, cols], mask[row, cols] = doc, 1
    return jnp.asarray(tokens), jnp.asarray(mask)


def test_padding_changes_no_reward(setup):
    docs, reward, head_params = setup
    base, features = reward(*_batch(docs, 10))
    more_pads, _ = reward(*_batch(docs, 16, pad_token=5))  # pads appended, and not token 0
    left, _ = reward(*_batch(docs, 16, left=True))
    np.testing.assert_allclose(np.asarray(more_pads), np.asarray(base), atol=1e-6, rtol=0)
    np.testing.assert_allclose(np.asarray(left), np.asarray(base), atol=1e-6, rtol=0)
    # Each row alone gives its reward in the batch, and it is the projection of the last real
    # token's features.
    for row, doc in enumerate(docs):
        alone, _ = reward(*_batch([doc], len(doc)))
        np.testing.assert_allclose(float(alone[0]), float(base[row]), atol=1e-6, rtol=0)
        last = np.asarray(features[row, len(doc) - 1])
        kernel = np.asarray(head_params["score"]["kernel"])[:, 0]
        np.testing.assert_allclose(float(base[row]), last @ kernel + 0.3, atol=1e-6, rtol=0)


def test_reward_depends_on_the_last_real_token(setup):
    docs, reward, _ = setup
    base, _ = reward(*_batch(docs, 10))
    changed = [d.copy() for d in docs]
    changed[0][-1] = 4 if changed[0][-1] != 4 else 5
    after, _ = reward(*_batch(changed, 10))
    assert abs(float(after[0]) - float(base[0])) > 1e-4
    np.testing.assert_array_equal(np.asarray(after[1:]), np.asarray(base[1:]))


def test_last_real_index():
    mask = jnp.asarray([[1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 0, 0], [2, 2, 3, 0]])
    assert last_real_index(mask).tolist() == [1, 3, 0, 2]  # segment ids count as real


def test_value_head_shape_dtype_and_partitioning():
    cfg = tiny_config("gpt2", dtype="bfloat16")
    head = ValueHead(cfg.d_model, dtype=cfg.compute_dtype)
    features = jnp.ones((3, 5, cfg.d_model), jnp.bfloat16)
    boxed = head.init(jax.random.PRNGKey(0), features)["params"]
    assert nn.get_partition_spec(boxed)["value"]["kernel"] == jax.sharding.PartitionSpec(
        "embed", None)
    values = head.apply({"params": nn.meta.unbox(boxed)}, features)
    assert values.shape == (3, 5) and values.dtype == jnp.float32
    reward_spec = nn.get_partition_spec(RewardHead(cfg.d_model).init(
        jax.random.PRNGKey(0), features, jnp.ones((3, 5)))["params"])
    assert reward_spec["score"]["kernel"] == jax.sharding.PartitionSpec("embed", None)
