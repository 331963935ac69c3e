"""Column working, checked by hand: carries, borrows, zeros, uneven lengths, products."""

import random

import pytest

from llm_jax.recipes.math.arithmetic import (
    LEVELS,
    Operation,
    column_lines,
    generate_problem,
    generate_problems,
)

TABLE = [
    # no carry
    (Operation("+", 42, 51, 93), ["units: 2 + 1 = 3, write 3", "tens: 4 + 5 = 9, write 9",
                                  "42 + 51 = 93"]),
    # carries into a new column
    (Operation("+", 67, 99, 166), ["units: 7 + 9 = 16, write 6, carry 1",
                                   "tens: 6 + 9 + 1 = 16, write 6, carry 1",
                                   "hundreds: carry 1, write 1", "67 + 99 = 166"]),
    # uneven lengths and a zero digit
    (Operation("+", 105, 7, 112), ["units: 5 + 7 = 12, write 2, carry 1",
                                   "tens: 0 + 0 + 1 = 1, write 1",
                                   "hundreds: 1 + 0 = 1, write 1", "105 + 7 = 112"]),
    # a borrow
    (Operation("-", 52, 38, 14), ["units: 2 - 8 borrow 1, 12 - 8 = 4, write 4",
                                  "tens: 5 - 1 - 3 = 1, write 1", "52 - 38 = 14"]),
    # borrows through zeros
    (Operation("-", 1000, 1, 999), ["units: 0 - 1 borrow 1, 10 - 1 = 9, write 9",
                                    "tens: 0 - 1 - 0 borrow 1, 10 - 1 - 0 = 9, write 9",
                                    "hundreds: 0 - 1 - 0 borrow 1, 10 - 1 - 0 = 9, write 9",
                                    "thousands: 1 - 1 - 0 = 0, write 0", "1000 - 1 = 999"]),
    # a result with a leading zero column
    (Operation("-", 52, 48, 4), ["units: 2 - 8 borrow 1, 12 - 8 = 4, write 4",
                                 "tens: 5 - 1 - 4 = 0, write 0", "52 - 48 = 4"]),
    # a one-digit factor, carries
    (Operation("*", 47, 6, 282), ["units: 7 * 6 = 42, write 2, carry 4",
                                  "tens: 4 * 6 + 4 = 28, write 8, carry 2",
                                  "hundreds: carry 2, write 2", "47 * 6 = 282"]),
    # table facts stay one line
    (Operation("+", 8, 11, 19), ["8 + 11 = 19"]),
    (Operation("-", 15, 7, 8), ["15 - 7 = 8"]),
    (Operation("*", 7, 6, 42), ["7 * 6 = 42"]),
    (Operation("/", 84, 7, 12), ["84 / 7 = 12"]),
]


@pytest.mark.parametrize("step,lines", TABLE, ids=[str(s) for s, _ in TABLE])
def test_column_working_by_hand(step, lines):
    assert column_lines(step) == lines


@pytest.mark.parametrize("level", sorted(LEVELS))
def test_written_digits_spell_the_result(level):
    """Across generated problems, every column line is true arithmetic and the written digits,
    read from the last column to the first, are the step's result."""
    for problem in generate_problems(level, level, 150):
        for step in problem.operations:
            lines = column_lines(step)
            assert lines[-1] == str(step)
            written = []
            for line in lines[:-1]:
                place, work = line.split(": ", 1)
                parts = work.split(", ")
                digit = next(p for p in parts if p.startswith("write "))[len("write "):]
                sums = [p for p in parts if " = " in p]
                if sums:  # "7 + 8 + 1 = 16": true, and the written digit is its last
                    expr, value = sums[0].split(" = ")
                    assert eval(expr) == int(value) and int(digit) == int(value) % 10, line
                else:  # the final carry
                    assert parts[0] == f"carry {digit}", line
                written.append(digit)
            assert int("".join(reversed(written or [str(step.result)]))) == step.result


def test_worked_solution_keeps_the_split_key_and_the_answer():
    problem = generate_problem(random.Random(5), 3)
    plain, column = problem.worked_solution("plain"), problem.worked_solution("column")
    assert plain == problem.solution and plain != column
    assert column.endswith(f"#### {problem.answer}")
    for step in problem.operations:  # each result line appears in both
        assert str(step) in plain.splitlines() and str(step) in column.splitlines()
    with pytest.raises(ValueError, match="working='rows'"):
        problem.worked_steps("rows")


def test_word_problem_steps_keep_their_story_label():
    problem = generate_problem(random.Random(0), 5)
    lines = problem.worked_steps("column")
    assert lines[0].startswith(f"{problem.labels[0]}: ")
    assert sum(line.startswith(tuple(f"{label}: " for label in problem.labels))
               for line in lines) == len(problem.operations)
