"""Bradley-Terry and DPO losses against values worked out by hand."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from llm_jax.losses.preference import bradley_terry_loss, dpo_loss, sequence_logprobs

# -log σ(x) = log(1 + e^-x), written out for the values used below.
NLS_1 = 0.3132616875182228      # -log σ(1)
NLS_M1 = 1.3132616875182228     # -log σ(-1)
NLS_HALF = 0.4740769841801067   # -log σ(0.5)
NLS_02 = 0.5981388693815918     # -log σ(0.2)
NLS_M02 = 0.7981388693815918    # -log σ(-0.2)

CHOSEN = jnp.array([2.0, 0.5])
REJECTED = jnp.array([1.0, 1.5])   # differences [1, -1]: one pair right, one wrong


def test_bradley_terry_plain():
    loss, m = bradley_terry_loss(CHOSEN, REJECTED)
    assert float(loss) == pytest.approx((NLS_1 + NLS_M1) / 2, abs=1e-6)
    assert float(m["accuracy"]) == 0.5
    assert float(m["margin"]) == pytest.approx(0.0, abs=1e-7)
    # rewards {2, .5, 1, 1.5}: mean 1.25, deviations ±.75, ±.25 -> var 0.3125
    assert float(m["mean_reward"]) == pytest.approx(1.25)
    assert float(m["reward_std"]) == pytest.approx(math.sqrt(0.3125), abs=1e-6)
    assert (float(m["min_reward"]), float(m["max_reward"])) == (0.5, 2.0)


def test_bradley_terry_margin_and_centering():
    loss, _ = bradley_terry_loss(CHOSEN, REJECTED, margin=jnp.array([0.5, 0.0]))
    assert float(loss) == pytest.approx((NLS_HALF + NLS_M1) / 2, abs=1e-6)
    # centering: 0.1 * mean((2+1)^2, (.5+1.5)^2) = 0.1 * 6.5
    loss, _ = bradley_terry_loss(CHOSEN, REJECTED, center_coef=0.1)
    assert float(loss) == pytest.approx((NLS_1 + NLS_M1) / 2 + 0.65, abs=1e-6)


def test_bradley_terry_ties_are_wrong_and_weights_drop_rows():
    _, m = bradley_terry_loss(jnp.array([1.0]), jnp.array([1.0]))
    assert float(m["accuracy"]) == 0.0
    loss, m = bradley_terry_loss(CHOSEN, REJECTED, weights=jnp.array([1.0, 0.0]))
    assert float(loss) == pytest.approx(NLS_1, abs=1e-6)
    assert float(m["accuracy"]) == 1.0 and float(m["min_reward"]) == 1.0
    loss, m = bradley_terry_loss(CHOSEN, REJECTED, weights=jnp.zeros(2))
    assert all(np.isfinite(float(v)) for v in [loss, *m.values()])


def test_dpo_hand_computed():
    # Δ = (-10 - -11) - (-12 - -11) = 2, β·Δ = 0.2
    args = (jnp.array([-10.0]), jnp.array([-12.0]), jnp.array([-11.0]), jnp.array([-11.0]))
    loss, m = dpo_loss(*args, beta=0.1)
    assert float(loss) == pytest.approx(NLS_02, abs=1e-6)
    assert float(m["rewards/chosen"]) == pytest.approx(0.1, abs=1e-6)
    assert float(m["rewards/rejected"]) == pytest.approx(-0.1, abs=1e-6)
    assert float(m["rewards/margins"]) == pytest.approx(0.2, abs=1e-6)
    assert float(m["rewards/accuracies"]) == 1.0
    assert float(m["logps/chosen"]) == -10.0 and float(m["logps/rejected"]) == -12.0
    loss, _ = dpo_loss(*args, beta=0.1, label_smoothing=0.1)
    assert float(loss) == pytest.approx(0.9 * NLS_02 + 0.1 * NLS_M02, abs=1e-6)


def test_dpo_is_log2_when_policy_is_reference():
    pi_c, pi_r = jnp.array([-3.0, -7.5, -1.0]), jnp.array([-4.0, -2.0, -9.0])
    loss, m = dpo_loss(pi_c, pi_r, pi_c, pi_r, beta=0.5)
    assert float(loss) == pytest.approx(math.log(2), abs=1e-6)
    assert float(m["rewards/margins"]) == 0.0 and float(m["rewards/accuracies"]) == 0.0


def test_dpo_gradient_raises_chosen_lowers_rejected():
    ref = jnp.array([-5.0])
    grad = jax.grad(lambda c, r: dpo_loss(c, r, ref, ref)[0], argnums=(0, 1))(
        jnp.array([-5.0]), jnp.array([-5.0]))
    # d/dπ_c of -log σ(β Δ) at Δ = 0 is -β/2; the implicit-reward metrics add nothing.
    assert float(grad[0][0]) == pytest.approx(-0.05) and float(grad[1][0]) == pytest.approx(0.05)


def test_sequence_logprobs_sums_over_the_mask():
    logps = jnp.array([[-1.0, -2.0, -3.0, -4.0], [-0.5, -0.5, -9.0, -9.0]])
    mask = jnp.array([[0, 1, 1, 0], [1, 1, 0, 0]])
    np.testing.assert_allclose(sequence_logprobs(logps, mask), [-5.0, -1.0])
