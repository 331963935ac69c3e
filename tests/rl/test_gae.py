"""GAE advantages and returns against a small case worked out by hand."""

import jax
import jax.numpy as jnp
import numpy as np

from llm_jax.rl.gae import gae


def test_gae_hand_computed_with_padding():
    # Row 0: three real tokens then padding (junk reward/value there must be ignored).
    # Row 1: the same episode as row 0 without its middle token: a masked hole at t=1
    #        (junk 9 / 7) that must be skipped, and padding at t=3.
    rewards = jnp.array([[0.0, 0.0, 1.0, 7.0], [0.0, 9.0, 1.0, 5.0]])
    values = jnp.array([[0.5, 0.4, 0.2, 4.0], [0.5, 7.0, 0.2, 3.0]])
    mask = jnp.array([[1, 1, 1, 0], [1, 0, 1, 0]])
    adv, ret = gae(rewards, values, mask, gamma=0.9, lam=0.5)
    # Row 0, γλ = 0.45:
    #   t2: δ = 1 + 0 - .2 = .8                     A = .8
    #   t1: δ = 0 + .9*.2 - .4 = -.22               A = -.22 + .45*.8 = .14
    #   t0: δ = 0 + .9*.4 - .5 = -.14               A = -.14 + .45*.14 = -.077
    # Row 1 (t1 skipped, so t0 sees V and A of t2):
    #   t2: A = .8;   t0: δ = .9*.2 - .5 = -.32     A = -.32 + .45*.8 = .04
    np.testing.assert_allclose(adv, [[-0.077, 0.14, 0.8, 0.0], [0.04, 0.0, 0.8, 0.0]],
                               atol=1e-6)
    np.testing.assert_allclose(ret, [[0.423, 0.54, 1.0, 0.0], [0.54, 0.0, 1.0, 0.0]],
                               atol=1e-6)


def test_gae_lambda_one_gamma_one_is_reward_to_go_minus_value():
    rewards = jnp.array([[0.1, -0.2, 1.0]])
    values = jnp.array([[0.3, 0.6, 0.9]])
    adv, ret = jax.jit(lambda r, v, m: gae(r, v, m, gamma=1.0, lam=1.0))(
        rewards, values, jnp.ones((1, 3)))
    np.testing.assert_allclose(ret, [[0.9, 0.8, 1.0]], atol=1e-6)
    np.testing.assert_allclose(adv, [[0.6, 0.2, 0.1]], atol=1e-6)
