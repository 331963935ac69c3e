"""`token_logprobs`: the trainers' log-probs, checked against plain log-softmax by hand."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from llm_jax.generate.logprobs import positions_from_mask, positions_from_segments, token_logprobs
from tests.helpers import random_params, tiny_config

WIDTH = 9  # every batch below has this width, so each jitted function compiles once


@pytest.fixture(scope="module")
def gpt2():
    model, params = random_params(tiny_config("gpt2", vocab_size=97))
    return model, params, jax.jit(token_logprobs, static_argnums=0)


@functools.cache
def _forward(model):
    return jax.jit(lambda p, t: model.apply({"params": p}, t))


def _reference(model, params, doc):
    """log p of each next token of one unpadded document: float64 log-softmax in numpy.

    The row is right-padded to WIDTH: causal attention keeps later tokens out of earlier
    predictions, and only the document's own predictions are returned.
    """
    row = jnp.asarray([list(doc) + [0] * (WIDTH - len(doc))])
    logits = np.asarray(_forward(model)(params, row), np.float64)[0, :len(doc) - 1]
    logp = logits - logits.max(-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
    return logp[np.arange(len(doc) - 1), doc[1:]]


def test_matches_log_softmax_and_ignores_left_padding(gpt2):
    model, params, logprobs = gpt2
    doc = [5, 17, 3, 90, 41, 8]
    padded = jnp.asarray([[0, 0, 0, *doc], [7, 7, 7, *doc]])  # different padding contents
    mask = jnp.asarray([[0, 0, 0] + [1] * 6] * 2)
    out = np.asarray(logprobs(model, params, padded, mask))
    assert out.shape == (2, 8)
    np.testing.assert_allclose(out[:, 3:], np.stack([_reference(model, params, doc)] * 2),
                               atol=1e-5, rtol=0)
    # Targets that are padding, and the first real token (no prefix in its row), are 0.
    assert (out[:, :3] == 0).all()
    # No mask: every token real, positions 0..T-1.
    whole = [*doc, 1, 2, 3]
    np.testing.assert_allclose(np.asarray(logprobs(model, params, jnp.asarray([whole]))),
                               _reference(model, params, whole)[None], atol=1e-5, rtol=0)


def test_right_padding_is_zero_and_does_not_change_the_rest(gpt2):
    model, params, logprobs = gpt2
    doc = [5, 17, 3, 90]
    out = np.asarray(logprobs(model, params, jnp.asarray([doc + [0] * 5, doc + [9] * 5]),
                              jnp.asarray([[1] * 4 + [0] * 5] * 2)))
    for row in out:
        np.testing.assert_allclose(row[:3], _reference(model, params, doc), atol=1e-5, rtol=0)
        assert row[3:].tolist() == [0.0] * 5


def test_packed_rows_equal_each_document_alone(gpt2):
    model, params, logprobs = gpt2
    a, b = [4, 9, 12, 60, 2], [33, 21, 8]
    tokens = jnp.asarray([a + b + [0]])
    segment_ids = jnp.asarray([[1] * 5 + [2] * 3 + [0]])
    positions = jnp.asarray([[0, 1, 2, 3, 4, 0, 1, 2, 0]])
    np.testing.assert_array_equal(np.asarray(positions_from_segments(segment_ids)), positions)
    out = np.asarray(logprobs(model, params, tokens, None, positions, segment_ids))
    np.testing.assert_allclose(out[0, :4], _reference(model, params, a), atol=1e-5, rtol=0)
    np.testing.assert_allclose(out[0, 5:7], _reference(model, params, b), atol=1e-5, rtol=0)
    assert out[0, 4] == 0 and out[0, 7] == 0  # a→b boundary and the padding target
    # Positions default to restarting at each document.
    default = np.asarray(logprobs(model, params, tokens, None, None, segment_ids))
    np.testing.assert_allclose(default, out, atol=1e-6, rtol=0)


def test_positions_from_mask():
    mask = jnp.asarray([[0, 0, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 0, 1, 1]])
    assert np.asarray(positions_from_mask(mask)).tolist() == [
        [0, 0, 0, 1, 2], [0, 1, 2, 2, 2], [0, 1, 1, 2, 3]]
