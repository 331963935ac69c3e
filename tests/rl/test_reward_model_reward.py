"""A trained reward-model run as an RL reward: float32 per completion, the head reads the last
real token (padding after it, whatever its ids, changes nothing), prompts rendered exactly as
the training pairs were, the same rewards on an 8-device mesh."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from llm_jax.data.preferences import PreferencePair, tokenize_pair
from llm_jax.errors import ConfigError, RunError
from llm_jax.rl.reward_model import (
    RewardModelReward,
    load_reward_model,
    make_reward_model_reward,
)
from llm_jax.sharding.mesh import make_mesh
from llm_jax.sharding.rules import rules
from tests.trainers.test_reward_model_run import train_reward_model, write_preferences

pytestmark = pytest.mark.slow  # every test reads a reward model trained here
PROMPTS = ["Tell me about the sea.", "What is 3 + 4?", "Describe a cat in a few words."]
REPLIES = ["The sea is deep.", "3 + 4 = 7.\n#### 7", "Soft and quiet."]


@pytest.fixture(scope="module")
def rm_run(tiny_pretrained_run, tmp_path_factory):
    root = tmp_path_factory.mktemp("rm")
    return train_reward_model(root / "run", tiny_pretrained_run,
                              write_preferences(root / "prefs.jsonl"))


@pytest.fixture(scope="module")
def reward(rm_run):
    return RewardModelReward(rm_run)


def test_one_float32_reward_per_completion(reward):
    out = reward(PROMPTS, REPLIES, [{}] * 3)
    assert out.shape == (3,) and out.dtype == np.float32 and np.isfinite(out).all()
    assert len(set(out.tolist())) == 3
    with pytest.raises(ValueError, match="one prompt and one meta"):
        reward(PROMPTS, REPLIES[:2], [{}] * 3)


def test_padding_after_the_last_token_changes_nothing(reward):
    alone = reward(PROMPTS[:1], REPLIES[:1], [{}])
    # In a bigger batch with a much longer reply: more rows and a longer padded length.
    long_reply = " ".join(["and the waves roll on"] * 8)
    batched = reward([PROMPTS[0]] * 3 + PROMPTS, [REPLIES[0], long_reply, "x", *REPLIES],
                     [{}] * 6)
    np.testing.assert_allclose(batched[[0, 3]], [alone[0]] * 2, rtol=0, atol=1e-5)

    # Directly: right padding of any ids (segment id 0) after the last real token.
    ids = reward.render(PROMPTS[0], REPLIES[0])
    tokens = np.asarray([ids], np.int32)
    apply = jax.jit(lambda p, t, s: reward.model.apply({"params": p}, t, s))
    exact = apply(reward.params, tokens, np.ones_like(tokens))
    pad = np.random.default_rng(0).integers(0, reward.model.cfg.vocab_size, (1, 7))
    padded = np.concatenate([tokens, pad.astype(np.int32)], axis=1)
    segments = (np.arange(padded.shape[1]) < len(ids)).astype(np.int32)[None]
    got = apply(reward.params, padded, segments)
    np.testing.assert_allclose(got, exact, rtol=0, atol=1e-5)
    np.testing.assert_allclose(exact, alone, rtol=0, atol=1e-5)


def test_scores_what_the_stage_trained_on(reward):
    pair = PreferencePair([{"role": "user", "content": PROMPTS[1]}], REPLIES[1], "no")
    tokenized = tokenize_pair(pair, reward.tokenizer, reward.template)
    assert reward.render(PROMPTS[1], REPLIES[1]) == tokenized.chosen_ids.tolist()
    assert reward.render(pair.prompt_messages, REPLIES[1]) == tokenized.chosen_ids.tolist()


def test_same_rewards_on_an_8_device_mesh(rm_run, reward):
    mesh = make_mesh({"data": -1})
    fn = make_reward_model_reward(str(rm_run), type("Run", (), {"mesh": mesh,
                                                                "rules": rules("dp")})())
    assert len(jax.tree.leaves(fn.params)[0].sharding.device_set) == 8
    np.testing.assert_allclose(fn(PROMPTS, REPLIES, [{}] * 3), reward(PROMPTS, REPLIES, [{}] * 3),
                               rtol=0, atol=1e-5)


def test_not_a_reward_model_run(tiny_pretrained_run):
    with pytest.raises(RunError, match="not a reward-model run"):
        load_reward_model(tiny_pretrained_run)
    with pytest.raises(ConfigError, match="rl.reward_model=RUN_DIR"):
        make_reward_model_reward("", None)


def test_loaded_params_score_like_the_reward(rm_run, reward):
    rm, params, tokenizer, template = load_reward_model(rm_run)
    ids = reward.render(PROMPTS[2], REPLIES[2])
    tokens = jnp.asarray([ids], jnp.int32)
    score = jax.jit(lambda p, t, s: rm.apply({"params": p}, t, s))
    np.testing.assert_allclose(score(params, tokens, jnp.ones_like(tokens)),
                               reward(PROMPTS[2:], REPLIES[2:], [{}]), rtol=0, atol=1e-5)
