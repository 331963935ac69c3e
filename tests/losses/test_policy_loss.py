"""The clipped policy loss, KL estimators and aggregation modes, checked by hand."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from llm_jax.losses.policy import PolicyLossConfig, aggregate, kl_estimate, policy_loss

MASK = jnp.array([[1, 1, 1], [1, 0, 0]], jnp.float32)


def test_aggregation_modes_on_a_hand_made_batch():
    values = jnp.array([[1.0, 2.0, 3.0], [4.0, 9.0, 9.0]])  # 9s are masked out
    loss, weight = aggregate(values, MASK, "token_mean")
    assert float(loss) == pytest.approx(10 / 4) and float(weight) == 4
    loss, weight = aggregate(values, MASK, "sequence_mean")
    assert float(loss) == pytest.approx((2 + 4) / 2) and float(weight) == 2
    loss, weight = aggregate(values, MASK, "dr_grpo", max_completion_length=5)
    assert float(loss) == pytest.approx(10 / (2 * 5)) and float(weight) == 2


@pytest.mark.parametrize("mode", ["token_mean", "sequence_mean", "dr_grpo"])
def test_weights_make_micro_batches_equal_the_whole_batch(mode):
    rng = np.random.default_rng(0)
    values = jnp.asarray(rng.normal(size=(4, 5)), jnp.float32)
    mask = jnp.asarray(rng.integers(0, 2, size=(4, 5)), jnp.float32).at[:, 0].set(1)
    whole, _ = aggregate(values, mask, mode, max_completion_length=5)
    parts = [aggregate(values[i:i + 2], mask[i:i + 2], mode, max_completion_length=5)
             for i in (0, 2)]
    combined = sum(loss * w for loss, w in parts) / sum(w for _, w in parts)
    assert float(combined) == pytest.approx(float(whole), rel=1e-6)


def test_kl_estimators_by_hand():
    logp, ref = jnp.array([-1.0, -0.5]), jnp.array([-2.0, -0.5])
    # k3 = exp(ref - logp) - (ref - logp) - 1 = e^-1 + 1 - 1
    np.testing.assert_allclose(kl_estimate(logp, ref), [math.exp(-1), 0.0], rtol=1e-6)
    assert float(kl_estimate(jnp.array(-3.0), jnp.array(-1.0))) >= 0


def test_clipping_on_both_sides_by_hand():
    cfg = PolicyLossConfig(eps_low=0.2, eps_high=0.3)
    old = jnp.zeros((4, 1))
    ratios = jnp.array([[1.5], [0.5], [1.5], [0.5]])
    adv = jnp.array([1.0, -1.0, -1.0, 1.0])
    mask = jnp.ones((4, 1))

    def loss_of(logp):
        return policy_loss(logp, old, adv, mask, cfg)

    loss, _, metrics = loss_of(jnp.log(ratios))
    # per token -min(r·A, clip(r)·A): -min(1.5, 1.3) = -1.3; -min(-0.5, -0.8) = 0.8;
    # -min(-1.5, -1.3) = 1.5; -min(0.5, 0.8) = -0.5
    assert float(loss) == pytest.approx((-1.3 + 0.8 + 1.5 - 0.5) / 4, rel=1e-6)
    assert float(metrics["clip_ratio/high_mean"]) == 0.25  # row 0: r > 1.3 with A > 0
    assert float(metrics["clip_ratio/low_mean"]) == 0.25  # row 1: r < 0.8 with A < 0
    assert float(metrics["clip_ratio/region_mean"]) == 0.5
    grads = jax.grad(lambda lp: loss_of(lp)[0])(jnp.log(ratios))
    # clipped tokens pass no gradient; the others get -r·A/4 (d r / d logp = r)
    np.testing.assert_allclose(grads[:, 0], [0.0, 0.0, 1.5 / 4, -0.5 / 4], rtol=1e-6)


@pytest.mark.parametrize("mode", ["token_mean", "sequence_mean", "dr_grpo"])
def test_gradient_at_ratio_one_is_reinforce(mode):
    rng = np.random.default_rng(1)
    logp = jnp.asarray(-rng.uniform(0.1, 3, size=(3, 4)), jnp.float32)
    adv = jnp.asarray(rng.normal(size=3), jnp.float32)
    mask = jnp.array([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]], jnp.float32)
    cfg = PolicyLossConfig(eps_low=0.2, eps_high=0.28, aggregation=mode,
                           max_completion_length=4)
    clipped = jax.grad(lambda lp: policy_loss(lp, logp, adv, mask, cfg)[0])(logp)
    reinforce = jax.grad(lambda lp: aggregate(-adv[:, None] * lp, mask, mode, 4)[0])(logp)
    np.testing.assert_allclose(clipped, reinforce, rtol=1e-6, atol=1e-7)


def test_kl_term_enters_with_its_coefficient():
    logp = jnp.array([[-1.0, -2.0]])
    ref = jnp.array([[-2.0, -2.0]])
    mask = jnp.ones((1, 2))
    base = PolicyLossConfig()
    with_kl = PolicyLossConfig(kl_coef=0.5)
    plain, _, _ = policy_loss(logp, logp, jnp.zeros(1), mask, base)
    loss, _, metrics = policy_loss(logp, logp, jnp.zeros(1), mask, with_kl, ref_logp=ref)
    assert float(plain) == 0.0
    k3 = math.exp(-1) + 1 - 1  # first token: ref - logp = -1; second: 0
    assert float(metrics["kl"]) == pytest.approx(k3 / 2)
    assert float(loss) == pytest.approx(0.5 * k3 / 2)
    with pytest.raises(ValueError, match="reference"):
        policy_loss(logp, logp, jnp.zeros(1), mask, with_kl)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="aggregation"):
        PolicyLossConfig(aggregation="mean")
    with pytest.raises(ValueError, match="importance"):
        PolicyLossConfig(importance="segment")
    with pytest.raises(ValueError, match="max_completion_length"):
        PolicyLossConfig(aggregation="dr_grpo")


def test_kl_bias_correction_weights_k3_by_the_detached_ratio():
    # k3 · sg(π/π_old): value and gradient by hand on one token with A = 0.
    logp, old, ref = jnp.array([[-1.0]]), jnp.array([[-1.5]]), jnp.array([[-2.0]])
    mask = jnp.ones((1, 1))
    cfg = PolicyLossConfig(kl_coef=0.5, kl_bias_correction=True)

    def loss(lp):
        return policy_loss(lp, old, jnp.zeros(1), mask, cfg, ref_logp=ref)[0]

    ratio = math.exp(0.5)
    k3 = math.exp(-1.0) + 1.0 - 1.0
    assert float(loss(logp)) == pytest.approx(0.5 * ratio * k3, rel=1e-6)
    # d k3 / d logp = 1 - exp(ref - logp); the ratio is a constant
    grad = jax.grad(loss)(logp)
    assert float(grad[0, 0]) == pytest.approx(0.5 * ratio * (1 - math.exp(-1.0)), rel=1e-6)
    plain = PolicyLossConfig(kl_coef=0.5)
    grad_plain = jax.grad(lambda lp: policy_loss(lp, old, jnp.zeros(1), mask, plain,
                                                 ref_logp=ref)[0])(logp)
    assert float(grad_plain[0, 0]) == pytest.approx(0.5 * (1 - math.exp(-1.0)), rel=1e-6)


def test_gspo_sequence_ratio_by_hand():
    # Two completions; the sequence ratio is exp(mean over its tokens of logp - old).
    logp = jnp.array([[-1.0, -2.0, 0.0], [-0.5, 0.0, 0.0]])
    old = jnp.array([[-1.2, -1.9, 0.0], [-0.4, 0.0, 0.0]])
    mask = jnp.array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    adv = jnp.array([1.0, -1.0])
    wide = PolicyLossConfig(importance="sequence", seq_eps_low=0.5, seq_eps_high=0.5,
                            aggregation="sequence_mean")
    s1, s2 = math.exp((0.2 - 0.1) / 2), math.exp(-0.1)
    loss, _, metrics = policy_loss(logp, old, adv, mask, wide)
    assert float(loss) == pytest.approx((-s1 + s2) / 2, abs=1e-6)  # fp32 rounding
    # gradient: d(-A s)/d logp_t = -A · s / |y| on each token of the completion
    grad = jax.grad(lambda lp: policy_loss(lp, old, adv, mask, wide)[0])(logp)
    np.testing.assert_allclose(grad, [[-s1 / 2 / 2, -s1 / 2 / 2, 0.0], [s2 / 2, 0.0, 0.0]],
                               rtol=1e-6)
    # GSPO's own tight range clips both: no gradient, and the clip metrics say so.
    tight = PolicyLossConfig(importance="sequence", aggregation="sequence_mean")
    grad = jax.grad(lambda lp: policy_loss(lp, old, adv, mask, tight)[0])(logp)
    np.testing.assert_allclose(grad, 0.0, atol=1e-7)
    _, _, metrics = policy_loss(logp, old, adv, mask, tight)
    assert float(metrics["clip_ratio/high_mean"]) == pytest.approx(2 / 3)
    assert float(metrics["clip_ratio/low_mean"]) == pytest.approx(1 / 3)
    # Token-level ratios of the same batch differ from the sequence's.
    token = PolicyLossConfig(aggregation="sequence_mean")
    assert float(policy_loss(logp, old, adv, mask, token)[0]) != pytest.approx(float(loss))
