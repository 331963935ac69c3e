"""PPO's clipped value loss against values worked out by hand."""

import jax.numpy as jnp
import pytest

from llm_jax.losses.value import clipped_value_loss


def test_clipped_value_loss_hand_computed():
    values = jnp.array([[1.0, -2.0, 2.0]])
    old = jnp.array([[0.5, -0.5, 2.0]])
    returns = jnp.array([[2.0, -1.0, 0.0]])
    mask = jnp.array([[1, 1, 0]])  # the last position is padding (its error 4 must not count)
    loss, m = clipped_value_loss(values, old, returns, mask, clip_eps=0.2)
    # t0: clip(1, .3, .7) = .7 -> errors (1-2)^2 = 1 and (.7-2)^2 = 1.69: max 1.69, clipped won
    # t1: clip(-2, -.7, -.3) = -.7 -> errors (-2+1)^2 = 1 and (-.7+1)^2 = .09: max 1
    assert float(loss) == pytest.approx(0.5 * (1.69 + 1.0) / 2, abs=1e-6)
    assert float(m["value_clipfrac"]) == pytest.approx(0.5)
    assert float(m["value_loss"]) == float(loss)


def test_clipped_value_loss_empty_mask_is_zero():
    loss, m = clipped_value_loss(jnp.ones((1, 2)), jnp.zeros((1, 2)), jnp.zeros((1, 2)),
                                 jnp.zeros((1, 2)))
    assert float(loss) == 0.0 and float(m["value_clipfrac"]) == 0.0
