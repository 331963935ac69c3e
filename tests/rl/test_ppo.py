"""PPO: per-token rewards, whitening, the critic's alignment, and a 2-iteration run."""

import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from llm_jax.models.headed import Critic
from llm_jax.rl.ppo import ppo_targets, token_rewards, whiten
from llm_jax.tracking.metrics_log import metrics_by_step
from tests.helpers import tiny_config
from tests.rl.test_rl_trainer import EXPERIMENT, TINY_RL


def test_token_rewards_put_the_score_on_the_last_sampled_token_and_kl_on_every_one():
    scores = jnp.array([2.0, -1.0, 5.0])
    logp = jnp.array([[-1.0, -2.0, -0.5, 0.0],
                      [-1.0, -1.0, -1.0, -1.0],
                      [-3.0, -3.0, -3.0, -3.0]])
    ref = jnp.array([[-1.5, -1.0, -0.5, 0.0],
                     [-1.0, -2.0, -3.0, -1.0],
                     [-3.0, -3.0, -3.0, -3.0]])
    # row 0: three tokens; row 1: a forced (masked) hole then its last token; row 2: nothing
    mask = jnp.array([[1, 1, 1, 0], [1, 0, 0, 1], [0, 0, 0, 0]])
    got = np.asarray(token_rewards(scores, logp, ref, mask, kl_coef=0.1))
    want = np.array([[-0.1 * 0.5, -0.1 * -1.0, 0.0 + 2.0, 0.0],
                     [0.0, 0.0, 0.0, 0.0 - 1.0],
                     [0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(got, want, atol=1e-7)
    no_kl = np.asarray(token_rewards(scores, logp, ref, mask, kl_coef=0.0))
    np.testing.assert_allclose(no_kl, [[0, 0, 2, 0], [0, 0, 0, -1], [0, 0, 0, 0]])


def test_whiten_over_masked_tokens_only():
    x = jnp.array([[1.0, 2.0, 100.0], [3.0, 4.0, -50.0]])
    mask = jnp.array([[1, 1, 0], [1, 1, 0]])
    real = np.array([1.0, 2.0, 3.0, 4.0])
    want = (real - real.mean()) / np.sqrt(real.var(ddof=1) + 1e-8)
    got = np.asarray(whiten(x, mask))
    np.testing.assert_allclose(got[:, :2].ravel(), want, rtol=1e-6)
    assert (got[:, 2] == 0).all()


def test_ppo_targets_with_a_single_final_reward_and_zero_values():
    # γ = λ = 1, V = 0: every token's advantage and return is the final reward.
    rewards = jnp.array([[0.0, 0.0, 3.0]])
    values = jnp.zeros((1, 3))
    mask = jnp.ones((1, 3))
    adv, ret = ppo_targets(rewards, values, mask, gamma=1.0, lam=1.0, whiten_advantages=False)
    np.testing.assert_allclose(np.asarray(adv), [[3.0, 3.0, 3.0]])
    np.testing.assert_allclose(np.asarray(ret), [[3.0, 3.0, 3.0]])


def test_critic_values_ignore_left_padding_and_read_the_state_before_each_token():
    cfg = tiny_config()
    critic = Critic(cfg)
    params = jax.tree.map(lambda x: x.unbox() if hasattr(x, "unbox") else x,
                          critic.init_params(jax.random.PRNGKey(0)),
                          is_leaf=lambda x: hasattr(x, "unbox"))
    prompt, completion = [5, 6, 7], [8, 9]
    short = jnp.array([[*prompt, *completion]])
    padded = jnp.array([[0, 0, *prompt, *completion]])
    values = lambda tokens, present, prompt_len: critic.apply(  # noqa: E731
        {"params": params}, tokens, present, prompt_len)
    v_short = values(short, jnp.ones_like(short), 3)
    v_padded = values(padded, (padded > 0).astype(jnp.int32), 5)
    assert v_short.shape == (1, 2)
    np.testing.assert_allclose(np.asarray(v_short), np.asarray(v_padded), atol=1e-5)
    # the first completion token's value is read at the prompt's last token: it does not
    # depend on that completion token
    changed = jnp.array([[*prompt, 11, 9]])
    v_changed = values(changed, jnp.ones_like(changed), 3)
    assert float(v_changed[0, 0]) == pytest.approx(float(v_short[0, 0]), abs=1e-6)
    assert float(v_changed[0, 1]) != pytest.approx(float(v_short[0, 1]), abs=1e-6)


@pytest.mark.slow
def test_two_ppo_iterations_load_for_sampling_and_resume_exactly(tiny_pretrained_run, tmp_path):
    from llm_jax.checkpoints.restore import restore_params
    from llm_jax.checkpoints.sources import load_model
    from llm_jax.cli import main

    run_dir = tmp_path / "ppo"
    argv = ["train", EXPERIMENT, "--workdir", str(run_dir), "--config.train.steps=2",
            f"--config.init.from_run={tiny_pretrained_run}", *TINY_RL,
            "--config.rl.algorithm=ppo", "--config.rl.step_credit=false", "--config.rl.kl_coef=0.1",
            "--config.rl.epochs=2", "--config.rl.minibatches=2"]
    assert main(argv) == 0
    rows = metrics_by_step(run_dir)
    for step in (1, 2):
        row = rows[step]
        for key in ("reward", "value_loss", "value_clipfrac", "policy_loss", "values/mean",
                    "returns/mean", "non_score_reward", "kl_sequence", "grad_norm",
                    "time/critic"):
            assert np.isfinite(row[key]), (step, key)
        assert row["updates"] == 4.0
        assert row["value_loss"] > 0 and row["grad_norm"] > 0
    # the KL penalty is paid in the rewards: Σ −β·(logp − ref) per completion
    assert rows[2]["non_score_reward"] == pytest.approx(-0.1 * rows[2]["kl_sequence"], rel=1e-3,
                                                        abs=1e-6)
    assert "kl" not in rows[2]  # and not in the loss
    assert {"eval/accuracy", "eval/pass@1"} <= set(rows[2])

    # sampling, chat and export read the policy out of the {"policy", "critic"} checkpoints
    model, params, _, step = load_model(run_dir)
    assert step == 2
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
                            params)
    saved, _ = restore_params(run_dir / "checkpoints", {"policy": abstract}, 2)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(saved["policy"])):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    parent, _ = restore_params(tiny_pretrained_run / "checkpoints", abstract)
    assert any(not np.array_equal(np.asarray(a), np.asarray(b)) for a, b in
               zip(jax.tree.leaves(params), jax.tree.leaves(parent))), "the policy never moved"

    # resumed from its checkpoint (policy, critic and optimizer), an iteration is remade to
    # the bit: drop the newest checkpoint and run again
    before = metrics_by_step(run_dir)[2]
    shutil.rmtree(run_dir / "checkpoints" / "2")
    assert main(argv) == 0
    assert (run_dir / "checkpoints" / "2").is_dir()  # iteration 2 was made again
    again = metrics_by_step(run_dir)[2]
    for key in ("reward", "loss", "value_loss", "values/mean", "kl_sequence", "grad_norm",
                "param_norm", "eval/accuracy"):
        assert again[key] == before[key], key
