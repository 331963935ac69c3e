"""Both model flavours run; a document's logits do not depend on what it is packed beside."""

import jax.numpy as jnp
import numpy as np
import pytest

from llm_jax.models.config import ModelConfig
from llm_jax.models.presets import PRESETS, preset
from tests.helpers import init_params, tiny_config


@pytest.mark.parametrize("flavour", ["gpt2", "llama"])
def test_forward_shapes_and_param_count(flavour):
    cfg = tiny_config(flavour)
    model, params = init_params(cfg)
    tokens = jnp.arange(24).reshape(2, 12) % cfg.vocab_size
    logits = model.apply({"params": params}, tokens)
    assert logits.shape == (2, 12, cfg.vocab_size) and logits.dtype == jnp.float32
    assert np.isfinite(np.asarray(logits)).all()
    n = sum(x.size for x in __import__("jax").tree.leaves(params))
    assert n == cfg.num_params()
    assert ("lm_head" in params) == (not cfg.tie_embeddings)
    assert ("pos_embed" in params) == (cfg.pos == "learned")


@pytest.mark.parametrize("flavour", ["gpt2", "llama"])
def test_packed_document_matches_alone(flavour):
    cfg = tiny_config(flavour)
    model, params = init_params(cfg)
    rng = np.random.default_rng(0)
    doc_a, doc_b, doc_c = (rng.integers(4, cfg.vocab_size, n) for n in (7, 11, 5))
    packed = np.concatenate([doc_a, doc_b, doc_c, np.zeros(9, int)])[None]
    segments = np.concatenate([np.full(7, 1), np.full(11, 2), np.full(5, 3), np.zeros(9)])[None]
    positions = np.concatenate([np.arange(7), np.arange(11), np.arange(5), np.zeros(9)])[None]
    packed_logits = model.apply({"params": params}, jnp.asarray(packed), jnp.asarray(positions,
                                jnp.int32), jnp.asarray(segments, jnp.int32))
    alone = model.apply({"params": params}, jnp.asarray(doc_b)[None])
    np.testing.assert_allclose(np.asarray(packed_logits[0, 7:18]), np.asarray(alone[0]),
                               atol=1e-5)
    # Without segment ids the same row WOULD mix documents: the mask is what keeps them apart.
    mixed = model.apply({"params": params}, jnp.asarray(packed), jnp.asarray(positions,
                        jnp.int32))
    assert np.abs(np.asarray(mixed[0, 7:18]) - np.asarray(alone[0])).max() > 1e-3


def test_bf16_compute_keeps_fp32_params_and_logits():
    cfg = tiny_config("llama", dtype="bfloat16")
    model, params = init_params(cfg)
    assert params["block_0"]["attn"]["query"]["kernel"].dtype == jnp.float32
    logits = model.apply({"params": params}, jnp.ones((1, 8), jnp.int32))
    assert logits.dtype == jnp.float32


@pytest.mark.parametrize("remat", ["full", "dots"])
def test_remat_gives_same_gradients(remat):
    import jax

    from llm_jax.losses.lm import make_lm_loss
    from llm_jax.models.transformer import Transformer
    from tests.helpers import random_packed_batch

    cfg = tiny_config("gpt2")
    batch = {k: jnp.asarray(v) for k, v in random_packed_batch(2, 16, cfg.vocab_size).items()}
    _, params = init_params(cfg)
    grads = {}
    for mode in ("none", remat):
        model = Transformer(tiny_config("gpt2", remat=mode))
        loss = make_lm_loss(lambda p, t, pos, seg, m=model: m.apply({"params": p}, t, pos, seg))
        grads[mode] = jax.grad(lambda p, f=loss: f(p, batch, None)[0])(params)
    for a, b in zip(jax.tree.leaves(grads["none"]), jax.tree.leaves(grads[remat])):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)


def test_presets_have_the_advertised_sizes():
    sizes = {name: ModelConfig(vocab_size=50304 if "gpt2" in name else 4096, **preset(name))
             .num_params() for name in PRESETS}
    assert 1e6 < sizes["tiny"] < 5e6 and 1e6 < sizes["tiny_llama"] < 6e6
    assert 120e6 < sizes["gpt2_124m"] < 130e6
    assert 340e6 < sizes["gpt2_350m"] < 365e6


def test_bad_config_values_are_named():
    with pytest.raises(ValueError, match="model.norm"):
        tiny_config("gpt2", norm="batchnorm")
    with pytest.raises(ValueError, match="n_kv_heads"):
        tiny_config("llama", n_kv_heads=3)


def test_rope_scaling_from_json_is_hashable_and_round_trips():
    """Run configs arrive as JSON: a dict rope_scaling becomes the frozen dataclass, so the
    config stays hashable (the sampler keys compiled functions on the model)."""
    import dataclasses
    import json

    from llm_jax.nn.rope import RopeScaling

    scaling = {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 64}
    cfg = tiny_config("llama", rope_scaling=scaling)
    assert cfg.rope_scaling == RopeScaling(**scaling)
    assert hash(cfg) == hash(tiny_config("llama", rope_scaling=RopeScaling(**scaling)))
    again = ModelConfig(**json.loads(json.dumps(dataclasses.asdict(cfg))))
    assert again == cfg and hash(again) == hash(cfg)
    with pytest.raises(ValueError, match="rope_scaling needs pos='rope'"):
        tiny_config("gpt2", rope_scaling=scaling)
