"""KV-cache decoding gives the same logits as a full forward pass, at every position."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from llm_jax.generate.logprobs import positions_from_mask
from llm_jax.models.kv_cache import KVCache
from tests.helpers import random_params, tiny_config

PROMPT_LEN, NEW = 9, 6
LENGTHS = [9, 5, 1]  # ragged prompts, left-padded to PROMPT_LEN


def _ragged_batch(vocab: int):
    rng = np.random.default_rng(0)
    tokens = np.zeros((len(LENGTHS), PROMPT_LEN + NEW), np.int32)
    mask = np.zeros_like(tokens)
    for i, n in enumerate(LENGTHS):
        tokens[i, PROMPT_LEN - n:] = rng.integers(1, vocab, n + NEW)
        mask[i, PROMPT_LEN - n:] = 1
    return jnp.asarray(tokens), jnp.asarray(mask)


def _full_and_cached(model, params, tokens, mask, grow_at=None):
    """(full-forward logits, prefill + one-token-at-a-time cached logits, final cache).

    With `grow_at`, the cache starts with room for the prompt plus `grow_at` new tokens and
    is grown to full size after them, as the sampler does between decode segments.
    """
    batch = tokens.shape[0]
    positions = positions_from_mask(mask)
    full = model.apply({"params": params}, tokens, positions, mask)
    cache = KVCache.init(model.cfg, batch, PROMPT_LEN + (NEW if grow_at is None else grow_at))
    prefill, cache = model.apply({"params": params}, tokens[:, :PROMPT_LEN],
                                 positions[:, :PROMPT_LEN], mask[:, :PROMPT_LEN], cache=cache)

    def step(cache, new):
        token, pos = new
        logits, cache = model.apply({"params": params}, token[:, None], pos[:, None],
                                    jnp.ones((batch, 1), jnp.int32), cache=cache)
        return cache, logits[:, 0]

    new = (tokens[:, PROMPT_LEN:].T, positions[:, PROMPT_LEN:].T)
    outs = [prefill]
    if grow_at is not None:
        cache, first = jax.lax.scan(step, cache, jax.tree.map(lambda x: x[:grow_at], new))
        outs.append(first.transpose(1, 0, 2))
        cache = cache.grow(PROMPT_LEN + NEW)
        new = jax.tree.map(lambda x: x[grow_at:], new)
    cache, rest = jax.lax.scan(step, cache, new)
    outs.append(rest.transpose(1, 0, 2))
    return full, jnp.concatenate(outs, axis=1), cache


@pytest.mark.parametrize("flavour,overrides,grow_at", [
    ("gpt2", {}, None),
    ("llama", {"n_kv_heads": 4}, None),  # multi-head
    # Grouped-query (2 query heads per kv head), decoded into a cache that starts small and
    # grows after 2 new tokens, as the sampler grows it between decode segments.
    ("llama", {"n_kv_heads": 2}, 2),
], ids=["gpt2", "llama-mha", "llama-gqa-grown"])
def test_cached_decode_equals_full_forward(flavour, overrides, grow_at):
    cfg = tiny_config(flavour, vocab_size=97, **overrides)
    model, params = random_params(cfg)
    tokens, mask = _ragged_batch(cfg.vocab_size)
    full, cached, cache = jax.jit(lambda p: _full_and_cached(model, p, tokens, mask, grow_at))(
        params)
    real = np.asarray(mask, bool)
    np.testing.assert_allclose(np.asarray(cached)[real], np.asarray(full)[real], atol=1e-5,
                               rtol=0)
    assert int(cache.index) == cache.max_len == PROMPT_LEN + NEW
    # Left padding stays invalid in the cache; every prompt and decoded token is valid.
    np.testing.assert_array_equal(np.asarray(cache.valid), real)


def test_cache_is_sharded_like_activations():
    from jax.sharding import NamedSharding, PartitionSpec

    from llm_jax.sharding.mesh import make_mesh
    from llm_jax.sharding.rules import rules

    cfg = tiny_config("llama", vocab_size=97)
    model, params = random_params(cfg)
    mesh = make_mesh({"data": -1})
    batch_axes = nn.logical_to_mesh_axes(("act_batch",), rules("dp"))[0]
    spec = NamedSharding(mesh, PartitionSpec(batch_axes))
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules("dp")):
        cache = jax.tree.map(lambda x: jax.device_put(x, spec) if x.ndim else x,
                             KVCache.init(cfg, 8, 16))
        tokens = jax.device_put(jnp.ones((8, 4), jnp.int32), spec)
        _, cache = jax.jit(lambda p, t, c: model.apply({"params": p}, t, cache=c))(
            params, tokens, cache)
    assert len(cache.keys[0].sharding.device_set) == 8
    assert {s.data.shape[0] for s in cache.keys[0].addressable_shards} == {1}
