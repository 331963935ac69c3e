"""A sign check for every algorithm: a few updates under a reward that favours one token raise
that token's probability. A flipped sign anywhere (advantages, ratio, loss, aggregation) makes
the probability fall instead."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from llm_jax.losses.policy import PolicyLossConfig, aggregate, policy_loss
from llm_jax.rl.advantages import advantages
from llm_jax.rl.experience import rft_rows
from llm_jax.rl.ppo import ppo_targets, token_rewards

VOCAB, GOOD, PROMPTS, G, STEPS, LR = 6, 2, 4, 8, 6, 0.5

ALGORITHMS = {
    "grpo": dict(advantage="grpo", loss=PolicyLossConfig()),
    "dr_grpo": dict(advantage="dr_grpo",
                    loss=PolicyLossConfig(aggregation="dr_grpo", max_completion_length=1)),
    "rloo": dict(advantage="rloo", loss=PolicyLossConfig(aggregation="sequence_mean")),
    "gspo": dict(advantage="grpo", loss=PolicyLossConfig(importance="sequence",
                                                          aggregation="sequence_mean")),
    "grpo_kl_corrected": dict(advantage="grpo", loss=PolicyLossConfig(
        kl_coef=0.01, kl_bias_correction=True)),
    "ppo": dict(advantage="ppo", loss=PolicyLossConfig()),
    "rft": dict(advantage="rft", loss=None),
}


def _loss(name, logits, tokens, rewards, ref_logits):
    spec = ALGORITHMS[name]
    mask = jnp.ones((len(tokens), 1))
    logp = jax.nn.log_softmax(logits)[tokens][:, None]
    old = jax.lax.stop_gradient(logp)
    if spec["advantage"] == "rft":
        kept = rft_rows(np.asarray(rewards) > 0, np.ones(len(tokens)), G, keep=1)
        return aggregate(-logp[kept], mask[kept], "token_mean")[0]
    if spec["advantage"] == "ppo":  # a zero critic, the score at the only token
        per_token = token_rewards(jnp.asarray(rewards), old, None, mask, 0.0)
        adv, _ = ppo_targets(per_token, jnp.zeros_like(per_token), mask, gamma=1.0, lam=0.95)
    else:
        adv = jnp.asarray(advantages(np.asarray(rewards), G, spec["advantage"]))
    ref = jax.nn.log_softmax(ref_logits)[tokens][:, None]
    return policy_loss(logp, old, adv, mask, spec["loss"], ref_logp=ref)[0]


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_updates_raise_the_rewarded_tokens_probability(name):
    logits = jnp.zeros(VOCAB)
    ref_logits = logits
    key = jax.random.PRNGKey(0)
    for step in range(STEPS):
        tokens = jax.random.categorical(jax.random.fold_in(key, step), logits,
                                        shape=(PROMPTS * G,))
        rewards = (np.asarray(tokens) == GOOD).astype(np.float32)
        grad = jax.grad(_loss, argnums=1)(name, logits, tokens, rewards, ref_logits)
        logits = logits - LR * grad
    prob = float(jax.nn.softmax(logits)[GOOD])
    assert prob > 1.5 / VOCAB, (name, prob)
