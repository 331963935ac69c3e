"""The sampler: greedy == argmax loop, log-probs == token_logprobs, filtering by hand, stops,
ragged batches, groups, meshes, buckets without retracing, determinism, streaming."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from llm_jax.generate import sampler as sampler_module
from llm_jax.generate.filtering import categorical, filter_logits, greedy
from llm_jax.generate.logprobs import positions_from_mask, token_logprobs
from llm_jax.generate.sampler import (
    FINISH_LENGTH,
    FINISH_STOP,
    Sampler,
    SamplingConfig,
    bucket_size,
)
from llm_jax.sharding.mesh import logical_shardings, make_mesh
from llm_jax.sharding.rules import rules
from tests.helpers import random_params, tiny_config

PROMPTS = [[2, 10, 11, 12, 13, 14, 15], [2, 20], [2, 30, 31, 32, 33]]  # ragged: 7, 2, 5 tokens
GREEDY = SamplingConfig(max_new_tokens=8, temperature=0.0)
SAMPLED = SamplingConfig(max_new_tokens=10, temperature=0.7, top_p=0.9, n=2)


_SAMPLERS: dict = {}


def _shared(model) -> Sampler:
    """One sampler per model for the whole module, so each shape compiles once."""
    return _SAMPLERS.setdefault(model, Sampler(model))


@pytest.fixture(scope="module")
def llama():
    return random_params(tiny_config("llama", vocab_size=97))


@pytest.fixture(scope="module")
def greedy_rollout(llama):
    model, params = llama
    return _shared(model).generate(params, PROMPTS, jax.random.PRNGKey(0), GREEDY)


@pytest.fixture(scope="module")
def sampled_rollout(llama):
    model, params = llama
    return _shared(model).generate(params, PROMPTS, jax.random.PRNGKey(1), SAMPLED)


def _argmax_continuation(model, params, prompt, steps):
    """Greedy decoding with full forward passes and no cache, one prompt, no padding."""
    forward = jax.jit(lambda t: model.apply({"params": params}, t))
    seq = list(prompt)
    for _ in range(steps):
        # Fixed width so jit compiles once; trailing tokens cannot affect earlier positions.
        logits = forward(jnp.asarray([seq + [0] * (16 - len(seq))]))
        seq.append(int(jnp.argmax(logits[0, len(seq) - 1])))
    return seq[len(prompt):]


def test_greedy_equals_argmax_loop(llama, greedy_rollout):
    model, params = llama
    for i, prompt in enumerate(PROMPTS):
        assert greedy_rollout.tokens[i].tolist() == _argmax_continuation(model, params, prompt, 8)
    assert (greedy_rollout.mask == 1).all() and (greedy_rollout.lengths == 8).all()
    assert (greedy_rollout.finish_reason == FINISH_LENGTH).all()


def test_logprobs_equal_token_logprobs(llama, sampled_rollout):
    model, params = llama
    out = sampled_rollout
    tokens = np.concatenate([out.prompt_tokens, out.tokens], axis=1)
    mask = np.concatenate([out.prompt_mask, out.mask], axis=1)
    ref = np.asarray(jax.jit(token_logprobs, static_argnums=0)(
        model, params, jnp.asarray(tokens), jnp.asarray(mask)))
    prompt_len = out.prompt_tokens.shape[1]
    # ref[:, t] is log p(tokens[:, t+1]); the first generated token sits at column prompt_len.
    np.testing.assert_allclose(out.logprobs, ref[:, prompt_len - 1:], atol=1e-5, rtol=0)
    assert (out.logprobs[out.mask == 1] < 0).all()
    # The sampling distribution (temperature 0.7) is not what is recorded: its log-probs of
    # the same tokens differ by far more than the tolerance above.
    logits = jax.jit(lambda t, m: model.apply({"params": params}, t, positions_from_mask(m), m))(
        jnp.asarray(tokens), jnp.asarray(mask))[:, prompt_len - 1:-1]
    sharpened = jnp.take_along_axis(jax.nn.log_softmax(logits / 0.7), tokens[:, prompt_len:, None],
                                    axis=-1)[..., 0]
    assert np.abs((np.asarray(sharpened) - out.logprobs) * out.mask).max() > 1e-2


# Jitted once per shape and setting: eager calls would compile every operation separately.
jit_filter = jax.jit(filter_logits, static_argnames=("top_k", "top_p"))
jit_categorical = jax.jit(categorical)


def test_filtering_matches_hand_computed():
    probs = np.array([[0.5, 0.2, 0.15, 0.1, 0.05]])
    logits = jnp.log(jnp.asarray(probs, jnp.float32))

    def kept(**kw):
        return np.flatnonzero(np.isfinite(np.asarray(jit_filter(logits, **kw))[0])).tolist()

    # top-p: keep the smallest most-likely set whose mass reaches p (at least the top token).
    assert kept(top_p=0.3) == [0]  # 0.5 alone already covers 0.3
    assert kept(top_p=0.6) == [0, 1]  # 0.5 < 0.6 ≤ 0.5+0.2
    assert kept(top_p=0.7) == [0, 1]  # 0.5+0.2 reaches 0.7 exactly
    assert kept(top_p=0.8) == [0, 1, 2]  # 0.7 < 0.8 ≤ 0.85
    assert kept(top_p=0.9) == [0, 1, 2, 3]  # 0.85 < 0.9 ≤ 0.95
    assert kept(top_p=0.99) == [0, 1, 2, 3, 4]
    assert kept(top_p=1.0) == [0, 1, 2, 3, 4]
    assert kept(top_k=1) == [0] and kept(top_k=3) == [0, 1, 2] and kept(top_k=0) == [0, 1, 2, 3, 4]
    # top-k first, then top-p on the renormalised rest: {0.5, 0.2, 0.15}/0.85 → 0.588, 0.235, ...
    assert kept(top_k=3, top_p=0.8) == [0, 1]  # 0.588 < 0.8 ≤ 0.824
    assert kept(top_k=3, top_p=0.85) == [0, 1, 2]
    renorm = np.asarray(jax.nn.softmax(jit_filter(logits, top_p=0.6))[0])
    np.testing.assert_allclose(renorm, [0.5 / 0.7, 0.2 / 0.7, 0, 0, 0], atol=1e-6)
    # Order in the vocabulary does not matter, and rows are independent.
    shuffled = jnp.log(jnp.asarray([[0.1, 0.5, 0.05, 0.15, 0.2], [0.2, 0.2, 0.2, 0.2, 0.2]]))
    out = np.isfinite(np.asarray(jit_filter(shuffled, top_p=0.8)))
    assert np.flatnonzero(out[0]).tolist() == [1, 3, 4] and out[1].all()  # ties kept together


def test_categorical_inverts_the_cdf_exactly():
    """An evenly spaced grid of uniforms picks each token in proportion to its probability."""
    probs = np.array([0.5, 0.2, 0.15, 0.1, 0.05])
    grid = (np.arange(1000) + 0.5) / 1000
    logits = jnp.log(jnp.asarray(np.tile(probs, (1000, 1)), jnp.float32))
    counts = np.bincount(np.asarray(jit_categorical(logits, jnp.asarray(grid, jnp.float32))),
                         minlength=5)
    np.testing.assert_allclose(counts, probs * 1000, atol=1)
    filtered = jit_filter(logits, top_p=0.6)  # → {0: 5/7, 1: 2/7}
    counts = np.bincount(np.asarray(jit_categorical(filtered, jnp.asarray(grid, jnp.float32))),
                         minlength=5)
    np.testing.assert_allclose(counts, [1000 * 5 / 7, 1000 * 2 / 7, 0, 0, 0], atol=1)
    # The extremes of U[0, 1) never pick a filtered-out token.
    edges = jnp.asarray([0.0, np.nextafter(np.float32(1), np.float32(0))], jnp.float32)
    assert set(np.asarray(jit_categorical(filtered[:2], edges)).tolist()) <= {0, 1}
    # A larger vocabulary (several CDF blocks, the last one partly padding) with every third
    # token filtered out, including whole stretches at the start.
    rng = np.random.default_rng(0)
    probs = rng.random(300) * (np.arange(300) % 3 != 0) * (np.arange(300) >= 40)
    probs /= probs.sum()
    grid = (np.arange(3000) + 0.5) / 3000
    logits = jnp.log(jnp.asarray(np.tile(probs, (3000, 1)), jnp.float32))
    counts = np.bincount(np.asarray(jit_categorical(logits, jnp.asarray(grid, jnp.float32))),
                         minlength=300)
    np.testing.assert_allclose(counts, probs * 3000, atol=1.01)
    assert counts[probs == 0].sum() == 0
    # Diverged weights (NaN logits) still give in-range ids, so text can be decoded.
    nan_rows = jnp.full((2, 300), jnp.nan)
    assert set(np.asarray(jit_categorical(nan_rows, edges)).tolist()) <= set(range(300))
    assert set(np.asarray(greedy(nan_rows)).tolist()) <= set(range(300))
    assert greedy(jnp.asarray([[1.0, 3.0, 3.0, 0.0]])).tolist() == [1]  # first on ties


def test_stop_tokens_end_rows_and_pad_after(llama, greedy_rollout):
    model, params = llama
    free = greedy_rollout
    stop = int(free.tokens[0, 3])
    first = free.tokens[0].tolist().index(stop)  # where greedy row 0 first emits `stop`
    # n=2 greedy: both samples of a prompt are the same row twice.
    cfg = SamplingConfig(max_new_tokens=8, temperature=0.0, stop_tokens=(stop, 96), pad_id=1,
                         n=2)
    out = _shared(model).generate(params, PROMPTS, jax.random.PRNGKey(0), cfg)
    assert out.prompt_index.tolist() == [0, 0, 1, 1, 2, 2]
    for field in ("tokens", "logprobs", "mask", "lengths", "finish_reason"):
        np.testing.assert_array_equal(getattr(out, field)[0::2], getattr(out, field)[1::2])
    assert out.lengths[0] == first + 1 and out.finish_reason[0] == FINISH_STOP
    assert out.mask[0].tolist() == [1] * (first + 1) + [0] * (7 - first)
    assert (out.tokens[0, first + 1:] == 1).all() and (out.logprobs[0, first + 1:] == 0).all()
    for i in range(len(PROMPTS)):
        row, got = free.tokens[i].tolist(), 2 * i
        hits = [t for t, tok in enumerate(row) if tok in (stop, 96)]
        length = hits[0] + 1 if hits else 8
        assert out.lengths[got] == length and out.mask[got].sum() == length
        assert out.finish_reason[got] == (FINISH_STOP if hits else FINISH_LENGTH)
        assert out.tokens[got].tolist() == row[:length] + [1] * (8 - length)
        np.testing.assert_allclose(out.logprobs[got], free.logprobs[i] * out.mask[got],
                                   atol=1e-6)


def test_ragged_batch_equals_each_prompt_alone(llama, greedy_rollout):
    model, params = llama
    assert greedy_rollout.prompt_tokens.shape == (3, 8)  # left-padded to the bucket
    assert greedy_rollout.prompt_mask.sum(1).tolist() == [7, 2, 5]
    # Prompts 0 and 2 (7 and 5 tokens) share one bucket, so one compile serves both; the
    # 2-token prompt is checked against unpadded decoding in test_greedy_equals_argmax_loop.
    for i in (0, 2):
        alone = _shared(model).generate(params, [PROMPTS[i]], jax.random.PRNGKey(0), GREEDY)
        assert alone.tokens[0].tolist() == greedy_rollout.tokens[i].tolist()
        np.testing.assert_allclose(alone.logprobs[0], greedy_rollout.logprobs[i], atol=1e-5)


def test_group_samples(sampled_rollout):
    out = sampled_rollout
    assert out.tokens.shape == out.logprobs.shape == out.mask.shape == (6, 10)
    assert out.prompt_tokens.shape == (6, 8) and out.lengths.shape == (6,)
    assert out.prompt_index.tolist() == [0, 0, 1, 1, 2, 2]
    for i in range(6):  # each row carries its own prompt
        prompt = out.prompt_tokens[i][out.prompt_mask[i] == 1].tolist()
        assert prompt == PROMPTS[out.prompt_index[i]]
    for g in range(3):  # the two samples of each prompt differ (greedy groups: stop test)
        assert out.tokens[2 * g].tolist() != out.tokens[2 * g + 1].tolist()


def test_deterministic_for_a_fixed_rng(llama, sampled_rollout):
    model, params = llama
    again = _shared(model).generate(params, PROMPTS, jax.random.PRNGKey(1), SAMPLED)
    np.testing.assert_array_equal(again.tokens, sampled_rollout.tokens)
    np.testing.assert_array_equal(again.logprobs, sampled_rollout.logprobs)
    other = _shared(model).generate(params, PROMPTS, jax.random.PRNGKey(2), SAMPLED)
    assert (other.tokens != sampled_rollout.tokens).any()
    # A prompt's samples depend on its row, not on the other prompts in the batch.
    first = _shared(model).generate(params, PROMPTS[:1] * 3, jax.random.PRNGKey(1), SAMPLED)
    np.testing.assert_array_equal(first.tokens[:2], sampled_rollout.tokens[:2])


@pytest.mark.parametrize("rule_name,shape", [("dp", {"data": 1}), ("dp", {"data": -1}),
                                            ("fsdp", {"fsdp": -1})])
def test_mesh_equals_single_device(llama, sampled_rollout, rule_name, shape):
    """1 device (no mesh) == a 1-device mesh == 8 devices, data- or fully-sharded."""
    model, params = llama
    devices = jax.devices()[:1] if shape == {"data": 1} else jax.devices()
    mesh = make_mesh(shape, devices=devices)
    with nn.logical_axis_rules(rules(rule_name)):
        boxed = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0),
                                                  jnp.zeros((1, 8), jnp.int32))["params"])
    sharded = jax.device_put(params, logical_shardings(boxed, mesh, rules(rule_name)))
    out = Sampler(model, mesh=mesh, rules=rules(rule_name)).generate(
        sharded, PROMPTS, jax.random.PRNGKey(1), SAMPLED)
    np.testing.assert_array_equal(out.tokens, sampled_rollout.tokens)
    np.testing.assert_allclose(out.logprobs, sampled_rollout.logprobs, atol=1e-5)
    np.testing.assert_array_equal(out.lengths, sampled_rollout.lengths)


def test_no_retrace_within_a_bucket_and_streaming(llama):
    """Calls within one shape bucket reuse the compiled loop, streaming included: chat makes
    a new callback object every turn. Streamed ids arrive in step order and match the result."""
    model, params = llama
    cfg = SamplingConfig(max_new_tokens=3, temperature=0.5)
    sampler = Sampler(model)
    calls = [[[2, 3, 4, 5, 6, 7, 8, 9, 10], [2], [2, 40]],
             # Other contents, other lengths, one more prompt: the same (16-token, 4-row) bucket.
             [[2] * 16, [5, 6], [7] * 12, [9] * 10]]
    for i, prompts in enumerate(calls):
        seen, rows = [], len(prompts)
        out = sampler.generate(params, prompts, jax.random.PRNGKey(i), cfg,
                               on_token=lambda step, ids, seen=seen, rows=rows: seen.append(
                                   (int(step), np.asarray(ids)[:rows].tolist())))
        assert sampler.trace_count == 1
        assert [step for step, _ in seen] == [0, 1, 2]
        assert np.array([ids for _, ids in seen]).T.tolist() == out.tokens.tolist()


def test_long_generation_across_cache_segments(llama, monkeypatch):
    """The cache grows between decode segments (every 64 steps); log-probs stay exact."""
    model, params = llama
    # Segments of 4 steps instead of 64 keep the test small; a new sampler (with its own
    # compiled functions) traces the loop with them.
    monkeypatch.setattr(sampler_module, "_SEGMENT_STEPS", 4)
    cfg = SamplingConfig(max_new_tokens=8, temperature=1.0, top_k=20)
    assert sampler_module._segment_ends(8) == (4, 8)
    out = Sampler(model).generate(params, PROMPTS[:2], jax.random.PRNGKey(3), cfg)
    tokens = np.concatenate([out.prompt_tokens, out.tokens], axis=1)
    mask = np.concatenate([out.prompt_mask, out.mask], axis=1)
    ref = np.asarray(jax.jit(token_logprobs, static_argnums=0)(
        model, params, jnp.asarray(tokens), jnp.asarray(mask)))
    np.testing.assert_allclose(out.logprobs, ref[:, out.prompt_tokens.shape[1] - 1:], atol=1e-5)
    assert (out.lengths == 8).all()


def test_bucket_sizes():
    assert [bucket_size(s, 64) for s in (1, 2, 3, 5, 33, 64, 65, 129)] == [
        1, 2, 4, 8, 64, 64, 128, 192]
    assert [bucket_size(s, 8) for s in (1, 3, 8, 9, 17)] == [1, 4, 8, 16, 24]
    assert bucket_size(40, 48) == 48


def test_bad_inputs_are_rejected(llama):
    model, params = llama
    rng = jax.random.PRNGKey(0)
    with pytest.raises(ValueError, match="exceeds the model's max_seq_len=64"):
        _shared(model).generate(params, [[2] * 60], rng, SamplingConfig(max_new_tokens=10))
    with pytest.raises(ValueError, match="at least one token"):
        _shared(model).generate(params, [[2], []], rng, GREEDY)
    with pytest.raises(ValueError, match="token ids"):
        _shared(model).generate(params, [[2, 97]], rng, GREEDY)
    with pytest.raises(ValueError, match="top_p"):
        SamplingConfig(top_p=0.0)
