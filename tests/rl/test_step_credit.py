"""Step credit: the first wrong line against the reference working, the token it starts at,
and per-token advantages that spare a wrong reply's right lines."""

import numpy as np
import pytest

from llm_jax.rl.experience import drop_silent_rows
from llm_jax.rl.step_credit import (
    blame_starts,
    first_wrong_line,
    line_start_token,
    token_advantages,
)

SOLUTION = ("47 + 38\nunits: 7 + 8 = 15, write 5, carry 1\ntens: 4 + 3 + 1 = 8, write 8\n"
            "47 + 38 = 85\n#### 85")


@pytest.mark.parametrize("completion, expected", [
    (SOLUTION, None),                                           # all right
    ("47 + 38\nunits: 7 + 8 = 15, write 5, carry 1", None),     # right so far, stopped
    ("47 + 36\nunits: 7 + 6 = 13, write 3, carry 1", 0),        # a miscopied operand
    ("47 + 38\nunits: 7 + 8 = 14, write 4, carry 1\n#### 84", 1),  # a one-digit fact
    ("47 + 38\n\n  units: 7 + 8 = 15, write 5, carry 1  \ntens: 4 + 3 = 7, write 7", 3),
    (SOLUTION + "\n#### 85", 5),                                # a line past the reference
])
def test_first_wrong_line(completion, expected):
    assert first_wrong_line(completion, SOLUTION) == expected


def test_line_start_token_on_pieces_that_hold_newlines():
    pieces = ["47", " +", " 38", "\n", "units", ":", " 7\n", "8", "\n8", " = 1"]
    decode = lambda ids: "".join(pieces[i] for i in ids)  # noqa: E731
    ids = list(range(len(pieces)))
    assert line_start_token(ids, 0, decode) == 0
    assert line_start_token(ids, 1, decode) == 4   # after the token that is "\n"
    assert line_start_token(ids, 2, decode) == 7   # after " 7\n", which ends its line
    assert line_start_token(ids, 3, decode) == 8   # "\n8": the line starts inside it
    assert line_start_token(ids, 4, decode) == len(ids)  # no such line


def test_token_advantages_spare_only_a_wrong_replys_earlier_tokens():
    adv = np.array([1.5, -0.5, -0.5, 0.0], np.float32)
    starts = np.array([2, 2, 0, 3], np.int32)
    got = token_advantages(adv, starts, steps=4)
    np.testing.assert_array_equal(got, [[1.5, 1.5, 1.5, 1.5],     # right: everywhere
                                        [0, 0, -0.5, -0.5],       # wrong from token 2
                                        [-0.5, -0.5, -0.5, -0.5],  # wrong from the start
                                        [0, 0, 0, 0]])
    # a row whose only blame is past its tokens carries nothing, and is dropped as silent
    batch = {"loss_mask": np.ones((4, 4), np.int32), "advantages": got}
    batch["advantages"][1] = 0
    _, kept = drop_silent_rows(batch, "token_mean", devices=1)
    assert kept == 2


def test_blame_starts_from_texts_and_tokens():
    pieces = ["47 + 38", "\n", "units: 7 + 8 = 14", ", write 4", "\n", "#### 84"]
    decode = lambda ids: "".join(pieces[i] for i in ids)  # noqa: E731
    tokens = np.array([list(range(6)), list(range(6))])
    texts = [decode(range(6))] * 2
    starts = blame_starts(tokens, np.array([6, 6]), texts,
                          [{"solution": SOLUTION}, {"task": "no reference"}], decode)
    np.testing.assert_array_equal(starts, [2, 0])  # line 1 starts at token 2; none: 0


@pytest.mark.parametrize("setting, key", [({"importance": "sequence"}, "rl.importance"),
                                          ({"algorithm": "ppo"}, "rl.algorithm=ppo")])
def test_step_credit_where_it_cannot_apply_is_a_config_error(setting, key):
    from experiments.grpo_math_tiny import get_config
    from llm_jax.errors import ConfigError
    from llm_jax.rl.learners import learner_class

    config = get_config()
    config.rl.step_credit = True
    config.rl.update(setting)
    with pytest.raises(ConfigError, match=key):
        learner_class(config.rl.algorithm).check_config(config)
