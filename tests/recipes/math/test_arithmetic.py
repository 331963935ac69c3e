"""Arithmetic generator: seeded, steps that really compute the answer, levels that hold."""

import random
import re

import pytest

from llm_jax.recipes.math.arithmetic import (
    LEVELS,
    ArithmeticProblem,
    Level,
    Operation,
    generate_problem,
    generate_problems,
)

STEP = re.compile(r"(?:.*: )?(\d+) ([-+*/]) (\d+) = (\d+)$")


def test_seed_fixes_the_problem_exactly():
    assert generate_problem(random.Random(0), 1) == ArithmeticProblem(
        "Compute 7 - 1 - 5.", (Operation("-", 7, 1, 6), Operation("-", 6, 5, 1)), 1)
    problem = generate_problem(random.Random(0), 4)
    assert problem == ArithmeticProblem(
        "Hiro has 50 pencils. He loses 3 of them. He loses 33 of them. "
        "How many pencils does Hiro have now?",
        (Operation("-", 50, 3, 47), Operation("-", 47, 33, 14)), 14, ("Loses 3", "Loses 33"))
    assert problem.steps == ("Loses 3: 50 - 3 = 47", "Loses 33: 47 - 33 = 14")
    assert problem.solution == "Loses 3: 50 - 3 = 47\nLoses 33: 47 - 33 = 14\n#### 14"
    assert problem.computation == "50 - 3 = 47 ; 47 - 33 = 14"
    assert generate_problems(7, 5, 20) == generate_problems(7, 5, 20)
    assert generate_problems(7, 5, 20) != generate_problems(8, 5, 20)


@pytest.mark.parametrize("level", sorted(LEVELS))
def test_every_step_is_true_and_chains_to_the_answer(level):
    spec = LEVELS[level]
    for problem in generate_problems(level, level, 200):
        assert len(problem.steps) == spec.n_steps
        previous = None
        for line in problem.steps:
            a, op, b, c = STEP.match(line).groups()
            a, b, c = int(a), int(b), int(c)
            assert c == {"+": a + b, "-": a - b, "*": a * b, "/": a // b}[op], line
            assert op != "/" or a % b == 0, line
            assert op in spec.ops
            assert previous is None or a == previous  # each step starts from the last result
            previous = c
        assert problem.answer == previous >= 0
        assert problem.solution.endswith(f"\n#### {problem.answer}")
        assert ("How many" in problem.question) == spec.words


def test_operands_respect_the_digit_budget():
    for problem in generate_problems(0, Level(digits=1, n_ops=3, ops="+-"), 300):
        assert all(int(n) < 10 for n in re.findall(r"\d+", problem.question))
    assert {p.question for p in generate_problems(0, Level(digits=1, n_ops=1), 400)} <= {
        f"{verb} {a} {op} {b}{end}" for verb, end in
        (("What is", "?"), ("Compute", "."), ("Calculate", ".")) for a in range(1, 10)
        for b in range(1, 10) for op in "+-"}


def test_bare_expressions_are_parenthesised_to_keep_step_order():
    for problem in generate_problems(3, 7, 200):
        expression = re.sub(r"^\w+ (is )?|[?.]$", "", problem.question)
        assert eval(expression.replace("/", "//")) == problem.answer, problem.question


def test_bad_levels_are_rejected():
    with pytest.raises(ValueError, match="unknown arithmetic level 9"):
        generate_problem(random.Random(0), 9)
    with pytest.raises(ValueError, match="ops must be drawn"):
        Level(digits=2, n_ops=1, ops="+^")
