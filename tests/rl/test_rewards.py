"""Math rewards on hand-made completions: correctness, format bonus, truncation, protocol."""

import numpy as np
import pytest

from llm_jax.recipes.math.sources import ReasoningGymTask
from llm_jax.rl.rewards import (
    MathReward,
    RewardFn,
    correctness_reward,
    format_reward,
    is_formatted,
    weighted_sum,
)

PROMPTS = ["What is 12 + 5?"] * 6
COMPLETIONS = [
    "12 + 5 = 17\n#### 17",            # right, formatted
    "12 + 5 = 17, so the answer is 17.",  # right, no #### line
    "12 + 5 = 18\n#### 18",            # wrong, formatted
    "It could be 17 or 18.",           # no answer
    "12 + 5 = 17\n#### 17\nMore text",  # right, but text after the #### line
    "12 + 5 = 17\n#### 17",            # right, but truncated by the rollout
]
META = [{"answer": "17"}] * 5 + [{"answer": "17", "truncated": True}]


def test_correctness_and_format_rewards_by_hand():
    np.testing.assert_array_equal(correctness_reward(PROMPTS, COMPLETIONS, META),
                                  [1, 1, 0, 0, 1, 1])
    np.testing.assert_array_equal(format_reward(PROMPTS, COMPLETIONS, META),
                                  [1, 0, 1, 0, 0, 1])
    assert is_formatted("  work\n#### -1,234  \n")
    assert not is_formatted("#### 12 apples")
    assert not is_formatted("")


def test_math_reward_combines_weights_and_zeroes_truncated():
    reward = MathReward(correct_weight=1.0, format_weight=0.25)
    info = reward.details(PROMPTS, COMPLETIONS, META)
    np.testing.assert_array_equal(info.rewards, np.array([1.25, 1.0, 0.25, 0.0, 1.0, 0.0],
                                                         np.float32))
    assert info.rewards.dtype == np.float32
    np.testing.assert_array_equal(info.correct, [1, 1, 0, 0, 1, 0])  # truncated: not credited
    np.testing.assert_array_equal(info.has_answer, [1, 1, 1, 0, 1, 1])
    np.testing.assert_array_equal(info.formatted, [1, 0, 1, 0, 0, 1])
    np.testing.assert_array_equal(info.truncated, [0, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(reward(PROMPTS, COMPLETIONS, META), info.rewards)
    metrics = info.metrics()
    assert metrics["reward"] == pytest.approx(3.5 / 6)
    assert metrics["accuracy"] == pytest.approx(3 / 6)
    assert metrics["answer_rate"] == pytest.approx(5 / 6)
    assert metrics["format_rate"] == pytest.approx(3 / 6)
    assert metrics["completions/clipped_ratio"] == pytest.approx(1 / 6)
    assert metrics["reward_std"] == pytest.approx(float(np.std(info.rewards)))


def test_truncation_penalty_or_no_special_case():
    penalised = MathReward(truncated_reward=-0.5)(PROMPTS, COMPLETIONS, META)
    np.testing.assert_array_equal(penalised, [1, 1, 0, 0, 1, -0.5])
    info = MathReward(truncated_reward=None).details(PROMPTS, COMPLETIONS, META)
    np.testing.assert_array_equal(info.rewards, [1, 1, 0, 0, 1, 1])
    assert info.correct[-1]


def test_weighted_sum_is_a_reward_fn():
    combined: RewardFn = weighted_sum((correctness_reward, 2.0), (format_reward, -1.0))
    np.testing.assert_array_equal(combined(PROMPTS, COMPLETIONS, META), [1, 2, -1, 0, 2, 1])


def test_task_verifier_is_used_when_meta_names_the_task():
    task = ReasoningGymTask("fraction_simplification", size=1, seed=0, split="all")
    problem = next(task.problems())
    meta = dict(problem.meta)
    a, b = problem.answer.strip("$").replace("\\dfrac", "").strip("{}").split("}{")
    unreduced = f"#### {2 * int(a)}/{2 * int(b)}"  # equal in value, not in lowest terms
    # The plain reference comparison accepts the equal value; the task's verifier does not.
    assert MathReward()([problem.prompt], [unreduced], [meta])[0] == 1.0
    by_task = MathReward(tasks={task.name: task})
    assert by_task([problem.prompt], [unreduced], [meta])[0] == 0.0
    assert by_task([problem.prompt], [f"#### {a}/{b}"], [meta])[0] == 1.0


def test_bad_inputs_say_what_is_wrong():
    with pytest.raises(ValueError, match="2 prompts, 1 completions, 1 metas"):
        MathReward()(["a", "b"], ["#### 1"], [{"answer": "1"}])
    with pytest.raises(ValueError, match=r"needs meta\['answer'\]"):
        correctness_reward(["a"], ["#### 1"], [{"task": "x"}])
