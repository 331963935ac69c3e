"""KV-cache decoding gives the same logits as a full forward pass, at every position."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from llm_jax.generate.logprobs import positions_from_mask
from llm_jax.nn.attention import KVCache
from tests.helpers import init_params, tiny_config


@pytest.mark.parametrize("flavour,kv_heads", [("gpt2", None), ("llama", 4), ("llama", 2),
                                              ("llama", 1)])
def test_cached_decode_equals_full_forward(flavour, kv_heads):
    cfg = tiny_config(flavour, **({"n_kv_heads": kv_heads} if kv_heads else {}))
    model, params = init_params(cfg)
    rng = np.random.default_rng(0)
    lengths = [9, 5, 1]  # ragged prompts, left-padded to 9
    prompt_len, new = 9, 7
    prompts = [rng.integers(4, cfg.vocab_size, n) for n in lengths]
    conts = rng.integers(4, cfg.vocab_size, (3, new))
    tokens = np.zeros((3, prompt_len + new), np.int32)
    mask = np.zeros_like(tokens)
    for i, p in enumerate(prompts):
        tokens[i, prompt_len - len(p):prompt_len] = p
        mask[i, prompt_len - len(p):] = 1
    tokens[:, prompt_len:] = conts
    full = model.apply({"params": params}, jnp.asarray(tokens),
                       positions_from_mask(jnp.asarray(mask)), jnp.asarray(mask))

    cache = KVCache.init(cfg, 3, prompt_len + new)
    pos = positions_from_mask(jnp.asarray(mask))
    logits, cache = model.apply({"params": params}, jnp.asarray(tokens[:, :prompt_len]),
                                pos[:, :prompt_len], jnp.asarray(mask[:, :prompt_len]),
                                cache=cache)
    steps = [logits]
    for t in range(prompt_len, prompt_len + new):
        step_logits, cache = model.apply({"params": params}, jnp.asarray(tokens[:, t:t + 1]),
                                         pos[:, t:t + 1], jnp.ones((3, 1), jnp.int32),
                                         cache=cache)
        steps.append(step_logits)
    cached = jnp.concatenate(steps, axis=1)
    real = mask.astype(bool)
    np.testing.assert_allclose(np.asarray(cached)[real], np.asarray(full)[real], atol=1e-5)
    assert int(cache.index) == prompt_len + new


def test_cache_is_sharded_like_activations():
    from flax import linen as nn
    from jax.sharding import NamedSharding, PartitionSpec

    from llm_jax.sharding.mesh import make_mesh
    from llm_jax.sharding.rules import BATCH_AXES, rules

    cfg = tiny_config("llama")
    model, params = init_params(cfg)
    mesh = make_mesh({"data": -1})
    spec = NamedSharding(mesh, PartitionSpec(BATCH_AXES))
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules("dp")):
        cache = jax.tree.map(lambda x: jax.device_put(x, spec) if x.ndim else x,
                             KVCache.init(cfg, 8, 16))
        tokens = jax.device_put(jnp.ones((8, 4), jnp.int32), spec)
        _, cache = jax.jit(lambda p, t, c: model.apply({"params": p}, t, cache=c))(
            params, tokens, cache)
    assert len(cache.keys[0].sharding.device_set) == 8
    assert {s.data.shape[0] for s in cache.keys[0].addressable_shards} == {1}
