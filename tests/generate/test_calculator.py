"""The calculator tool accepts plain arithmetic only and formats results exactly."""

import pytest

from llm_jax.generate.calculator import CalculatorError, evaluate

ACCEPTED = [
    ("1 + 2", "3"),
    ("12 × (3 + 4)", "84"),
    ("84 ÷ 12", "7"),
    ("7 / 2", "3.5"),
    ("1 / 3", "0.333333"),
    ("2 / 3", "0.666667"),
    ("-3 - -4", "1"),
    ("-(2 + 3) * 4", "-20"),
    ("0.1 + 0.2", "0.3"),
    ("6 / 4 * 2", "3"),
    ("1,250 + 250", "1500"),
    ("2.50 * 4", "10"),
    ("  ((((5))))  ", "5"),
    ("10 − 3", "7"),
    ("+4", "4"),
    ("123456789 * 987654321", "121932631112635269"),
    ("-1 / 3", "-0.333333"),
    ("1 / 3000000", "0"),
]

REJECTED = [
    "__import__('os').system('ls')",
    "abs(-3)",
    "x + 1",
    "2 ** 10",
    "7 // 2",
    "7 % 2",
    "1 / 0",
    "(1, 2)",
    "1,2",
    "True + 1",
    "'a' * 3",
    "[1] * 3",
    "(1).real",
    "1 if 1 else 2",
    "1 < 2",
    "lambda: 1",
    "",
    "   ",
    "1 +",
    "1e400",
    "1e31",
    "10" + "0" * 30,
    "99999999999999 * 99999999999999 * 99999999999999",
    "(" * 30 + "1" + ")" * 30,
    "1" + " + 1" * 60,
    "1\x00",
    "0x10",
]


@pytest.mark.parametrize("expression,expected", ACCEPTED)
def test_accepts_arithmetic(expression, expected):
    assert evaluate(expression) == expected


@pytest.mark.parametrize("expression", REJECTED)
def test_rejects_everything_else(expression):
    with pytest.raises(CalculatorError):
        evaluate(expression)
