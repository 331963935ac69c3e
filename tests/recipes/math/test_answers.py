"""Answer extraction on a table of completions, and equivalence (exact ints, math-verify else)."""

import threading

import pytest

from llm_jax.recipes.math.answers import (
    AnswerCheck,
    answers_at_once,
    check,
    extract_answer,
    is_equivalent,
    opens_with_answer,
)

EXTRACTIONS = [
    # the #### marker our solutions and GSM8K end with
    ("#### 17", "17"),
    ("12 + 5 = 17\n17 - 3 = 14\n#### 14", "14"),
    ("#### 1,234", "1234"),
    ("#### -5", "-5"),
    ("####\u22127", "-7"),                        # unicode minus
    ("#### +8", "8"),
    ("#### $18.00", "18"),                       # currency, and 18.00 is the integer 18
    ("#### 12.50 dollars.", "12.5"),             # units and a trailing period
    ("#### .5", "0.5"),
    ("#### 3/4", "3/4"),
    ("#### -0", "0"),
    ("#### 12 apples\nThe answer is 13", "12"),  # #### outranks other markers
    ("first try\n#### 3\nno wait\n#### 4", "4"),  # the last #### counts
    ("#### 5 + 3 = 8", None),                    # an expression, not an answer
    ("#### 1,23", None),                         # a malformed number is not guessed at
    ("#### none", None),
    # \boxed{}
    (r"So the total is $\boxed{7}$.", "7"),
    (r"\boxed{\frac{3}{4}}", "3/4"),
    (r"\boxed{-\dfrac{1}{2}}", "-1/2"),
    (r"\boxed{1,234}", "1234"),
    (r"\boxed{3} then \boxed{5}", "5"),
    (r"\boxed{x^2+1}", "x^2+1"),
    (r"\boxed{7", None),                         # unbalanced braces
    # "the answer is N" / "Answer: N"
    ("The answer is 42.", "42"),
    ("So the answer is -3/4.", "-3/4"),
    ("Answer: 1,000,000", "1000000"),
    ("Final answer: **12**", "12"),
    ("The total is 100, and the answer is 20%.", "20"),
    ("The answer is $5.", "5"),
    ("The answer is 3 \u00d7 4", None),
    # no marker: only when every number agrees
    ("42", "42"),
    ("It is 42.", "42"),
    ("42 apples, so 42.", "42"),
    ("3 + 5 = 8", None),
    ("I have 5 apples and 7 pears.", None),
    ("no numbers here", None),
    ("", None),
]


@pytest.mark.parametrize("completion,expected", EXTRACTIONS)
def test_extraction_table(completion, expected):
    assert extract_answer(completion) == expected


EQUIVALENCES = [
    ("17", "17", True),
    ("17", "18", False),
    ("1234", "1,234", True),
    ("12", "12.0", True),
    ("-5", "5", False),
    ("0.75", "3/4", True),                       # math-verify from here down
    ("3/4", "6/8", True),
    ("3/4", "4/3", False),
    ("12.5", "25/2", True),
    ("-12.582507840", "-12.58250784", True),
    (r"\frac{79}{173}", r"$\dfrac{79}{173}$", True),
    ("x^2+1", "1+x^2", True),
    ("1/3", "0.34", False),
    (None, "17", False),
]


@pytest.mark.parametrize("answer,reference,expected", EQUIVALENCES)
def test_equivalence(answer, reference, expected):
    assert is_equivalent(answer, reference) is expected


def test_integers_are_compared_exactly_not_by_float_rounding():
    big = 10**20
    assert not is_equivalent(str(big + 1), str(big))
    assert is_equivalent(f"{big:,}", str(big))


def test_check_reports_answer_and_correctness():
    assert check("5 + 7 = 12\n#### 12", "12") == AnswerCheck("12", True)
    assert check("5 + 7 = 13\n#### 13", "12") == AnswerCheck("13", False)
    assert not check("5 + 7 = 12 or 13", "12").has_answer


def test_equivalence_works_off_the_main_thread():
    # math-verify's default timeout uses SIGALRM, which fails in worker threads.
    results = []
    worker = threading.Thread(target=lambda: results.append(is_equivalent("0.75", "3/4")))
    worker.start()
    worker.join()
    assert results == [True]


@pytest.mark.parametrize("completion, expected", [
    ("The answer is 85.\n47 + 38\nunits: 7 + 8 = 15, write 5, carry 1", True),
    ("  answer: 12\n5 + 7 = 12", True),
    ("47 + 38\nunits: 7 + 8 = 15\n#### 85", False),
    ("47 + 38 = 85\nThe answer is 85.", False),  # worked first, answer at the end
    ("The answer is\n85", False),  # no number on the first line: nothing stated yet
    ("", False),
])
def test_opens_with_answer(completion, expected):
    assert opens_with_answer(completion) is expected


@pytest.mark.parametrize("completion, expected", [
    ("#### 85", True),
    ("\n  #### 85\n\n", True),  # blank lines around it are no working
    ("47 + 38\n#### 85", False),
    ("The answer is 85.", False),  # stated, but not as the answer line
    ("#### 85\n47 + 38", False),  # something written after it
    ("", False),
])
def test_answers_at_once(completion, expected):
    assert answers_at_once(completion) is expected
