"""The sampler: greedy == argmax loop, log-probs == token_logprobs, filtering, stops, buckets."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from llm_jax.generate import sampler as sampler_module
from llm_jax.generate.filtering import filter_logits
from llm_jax.generate.logprobs import token_logprobs
from llm_jax.generate.sampler import FINISH_LENGTH, FINISH_STOP, SamplingConfig, generate
from llm_jax.sharding.mesh import make_mesh
from llm_jax.sharding.rules import rules
from tests.helpers import init_params, tiny_config

PROMPTS = [[2, 10, 11, 12, 13, 14], [2, 20], [2, 30, 31, 32]]


@pytest.fixture(scope="module")
def llama():
    return init_params(tiny_config("llama"))


def _full_sequences(rollout):
    tokens = np.concatenate([rollout.prompt_tokens, rollout.tokens], axis=1)
    mask = np.concatenate([rollout.prompt_mask, rollout.mask], axis=1)
    return tokens, mask


def test_greedy_equals_argmax_loop(llama):
    model, params = llama
    out = generate(model, params, PROMPTS, jax.random.PRNGKey(0),
                   SamplingConfig(max_new_tokens=8, temperature=0.0))
    # One fixed width: causal attention makes trailing padding irrelevant, and jit compiles once.
    forward = jax.jit(lambda t: model.apply({"params": params}, t))
    for i, prompt in enumerate(PROMPTS):
        seq = list(prompt)
        for _ in range(8):
            logits = forward(jnp.asarray([seq + [0] * (16 - len(seq))]))
            seq.append(int(jnp.argmax(logits[0, len(seq) - 1])))
        assert out.tokens[i].tolist() == seq[len(prompt):]


def test_logprobs_equal_token_logprobs(llama):
    model, params = llama
    cfg = SamplingConfig(max_new_tokens=10, temperature=0.7, top_p=0.9, n=2)
    out = generate(model, params, PROMPTS, jax.random.PRNGKey(1), cfg)
    tokens, mask = _full_sequences(out)
    ref = np.asarray(token_logprobs(model, params, jnp.asarray(tokens), jnp.asarray(mask)))
    prompt_len = out.prompt_tokens.shape[1]
    ref_new = ref[:, prompt_len - 1:]  # log p of each generated token
    np.testing.assert_allclose(out.logprobs, ref_new * out.mask, atol=1e-5)
    assert (out.logprobs[out.mask == 1] < 0).all()


def test_filtering_matches_hand_computed():
    probs = jnp.asarray([[0.5, 0.2, 0.15, 0.1, 0.05]])
    logits = jnp.log(probs)

    def kept(**kw):
        return np.flatnonzero(np.asarray(jax.nn.softmax(filter_logits(logits, **kw))[0]) > 1e-9)

    assert kept(top_p=0.5).tolist() == [0]  # mass before token 1 is already 0.5
    assert kept(top_p=0.7).tolist() == [0, 1]  # 0.5 < 0.7, then 0.7 is not < 0.7
    assert kept(top_p=0.71).tolist() == [0, 1, 2]
    assert kept(top_k=3).tolist() == [0, 1, 2]
    assert kept(top_k=4, top_p=0.8).tolist() == [0, 1, 2]
    renorm = np.asarray(jax.nn.softmax(filter_logits(logits, top_p=0.7))[0])
    np.testing.assert_allclose(renorm[:2], [0.5 / 0.7, 0.2 / 0.7], atol=1e-6)


def test_stop_tokens_end_rows_and_mask_after(llama):
    model, params = llama
    free = generate(model, params, PROMPTS, jax.random.PRNGKey(0),
                    SamplingConfig(max_new_tokens=8, temperature=0.0))
    stop = int(free.tokens[0, 3])  # greedy will produce this at step 3 for row 0
    out = generate(model, params, PROMPTS, jax.random.PRNGKey(0),
                   SamplingConfig(max_new_tokens=8, temperature=0.0, stop_tokens=(stop,),
                              pad_id=0))
    first = list(free.tokens[0]).index(stop)
    assert out.lengths[0] == first + 1 and out.finish_reason[0] == FINISH_STOP
    assert out.mask[0].tolist() == [1] * (first + 1) + [0] * (7 - first)
    assert (out.tokens[0, first + 1:] == 0).all() and (out.logprobs[0, first + 1:] == 0).all()
    for i in range(1, 3):
        if stop not in free.tokens[i]:
            assert out.finish_reason[i] == FINISH_LENGTH and out.lengths[i] == 8
            assert out.tokens[i].tolist() == free.tokens[i].tolist()


def test_ragged_batch_equals_each_alone(llama):
    model, params = llama
    cfg = SamplingConfig(max_new_tokens=6, temperature=0.0)
    together = generate(model, params, PROMPTS, jax.random.PRNGKey(0), cfg)
    for i, p in enumerate(PROMPTS):
        alone = generate(model, params, [p], jax.random.PRNGKey(0), cfg)
        assert alone.tokens[0].tolist() == together.tokens[i].tolist()
        np.testing.assert_allclose(alone.logprobs[0], together.logprobs[i], atol=1e-5)


def test_group_samples(llama):
    model, params = llama
    out = generate(model, params, PROMPTS, jax.random.PRNGKey(3),
                   SamplingConfig(max_new_tokens=6, temperature=1.0, n=4))
    assert out.tokens.shape == (12, 6) and out.prompt_index.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert len({tuple(t) for t in out.tokens[:4]}) > 1  # samples differ within a group
    greedy = generate(model, params, PROMPTS, jax.random.PRNGKey(3),
                      SamplingConfig(max_new_tokens=6, temperature=0.0, n=3))
    assert len({tuple(t) for t in greedy.tokens[:3]}) == 1
    again = generate(model, params, PROMPTS, jax.random.PRNGKey(3),
                     SamplingConfig(max_new_tokens=6, temperature=1.0, n=4))
    assert (again.tokens == out.tokens).all()  # deterministic for a given rng


@pytest.mark.parametrize("rule_name,shape", [("dp", {"data": -1}), ("fsdp", {"fsdp": -1})])
def test_mesh_equals_single_device(llama, rule_name, shape):
    from flax import linen as nn

    from llm_jax.sharding.mesh import logical_shardings

    model, params = llama
    cfg = SamplingConfig(max_new_tokens=6, temperature=0.8, n=2)
    one = generate(model, params, PROMPTS, jax.random.PRNGKey(5), cfg,
                   mesh=make_mesh({"data": 1}, devices=jax.devices()[:1]), rules=rules("dp"))
    mesh = make_mesh(shape)
    with nn.logical_axis_rules(rules(rule_name)):
        boxed = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0),
                                                  jnp.zeros((1, 8), jnp.int32))["params"])
        sharded = jax.device_put(params, logical_shardings(boxed, mesh, rules(rule_name)))
    many = generate(model, sharded, PROMPTS, jax.random.PRNGKey(5), cfg, mesh=mesh,
                    rules=rules(rule_name))
    assert (one.tokens == many.tokens).all()
    np.testing.assert_allclose(one.logprobs, many.logprobs, atol=1e-5)


def test_no_retrace_within_a_bucket(llama, monkeypatch):
    model, params = llama
    traces = []
    original = sampler_module._decode_fn

    def counting(*args):
        fn = original(*args)

        def traced(*a):
            traces.append(1)
            return fn(*a)
        return traced

    monkeypatch.setattr(sampler_module, "_decode_fn", counting)
    monkeypatch.setattr(sampler_module, "_COMPILED", {})
    cfg = SamplingConfig(max_new_tokens=4, temperature=0.5)
    generate(model, params, PROMPTS, jax.random.PRNGKey(0), cfg)
    generate(model, params, [[2, 5, 6, 7, 8, 9, 10, 11, 12], [2]], jax.random.PRNGKey(1), cfg)
    assert len(traces) == 1


def test_too_long_prompt_is_rejected(llama):
    model, params = llama
    with pytest.raises(ValueError, match="exceeds the model's max_seq_len"):
        generate(model, params, [[2] * 60], jax.random.PRNGKey(0),
                 SamplingConfig(max_new_tokens=10))
