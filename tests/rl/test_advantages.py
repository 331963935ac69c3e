"""Group-relative advantages against values worked by hand."""

import math

import numpy as np
import pytest

from llm_jax.rl.advantages import advantages, zero_std_groups


def test_grpo_mean_and_unbiased_std():
    # group 1: mean 0.5, unbiased std sqrt((4 × 0.25) / 3) = sqrt(1/3)
    adv = advantages(np.array([1, 0, 0, 1, 0, 0, 0, 3.0]), group_size=4, estimator="grpo")
    a = 0.5 / (math.sqrt(1 / 3) + 1e-4)
    np.testing.assert_allclose(adv[:4], [a, -a, -a, a], rtol=1e-6)
    # group 2: mean 0.75, deviations (-0.75, -0.75, -0.75, 2.25), std sqrt(6.75 / 3) = 1.5
    np.testing.assert_allclose(adv[4:], np.array([-0.75, -0.75, -0.75, 2.25]) / 1.5001,
                               rtol=1e-6)


def test_zero_std_group_gives_zero_and_no_nan():
    rewards = np.array([0.3, 0.3, 0.3, 1.0, 0.0, 1.0])
    for estimator in ("grpo", "dr_grpo", "rloo"):
        adv = advantages(rewards, group_size=3, estimator=estimator)
        assert np.all(np.isfinite(adv))
        assert np.all(adv[:3] == 0.0), estimator
        assert np.any(adv[3:] != 0.0)
    np.testing.assert_array_equal(zero_std_groups(rewards, 3), [True, False])


def test_dr_grpo_is_mean_only():
    adv = advantages(np.array([1.0, 0, 0, 0]), group_size=4, estimator="dr_grpo")
    np.testing.assert_allclose(adv, [0.75, -0.25, -0.25, -0.25])


def test_rloo_leaves_the_sample_out():
    adv = advantages(np.array([1.0, 0, 0, 0]), group_size=4, estimator="rloo")
    # r_i - mean of the other three: 1 - 0, then 0 - 1/3 for the rest
    np.testing.assert_allclose(adv, [1.0, -1 / 3, -1 / 3, -1 / 3], rtol=1e-6)


def test_bad_groups_are_refused():
    with pytest.raises(ValueError, match="groups of 3"):
        advantages(np.zeros(4), group_size=3)
    with pytest.raises(ValueError, match="unknown advantage"):
        advantages(np.zeros(4), group_size=2, estimator="ppo")
