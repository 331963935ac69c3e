"""The project's own arithmetic and word-problem generator, with levels for a curriculum.

    problem = generate_problem(random.Random(0), level=4)
    problem.question   # "Ann has 12 apples. She buys 5 more. ... How many apples does Ann have?"
    problem.steps      # ("Buys 5 more: 12 + 5 = 17", ...)
    problem.solution   # the steps, then "#### 9" on the last line
    problem.answer     # 9

A level fixes the operand size (digits), which operations may appear and how many (each
operation is one solution step), and whether the problem is a bare expression or a story.
Everything is drawn from the `random.Random` passed in, so a seed fixes the problem stream.
Answers are always non-negative integers: subtraction never goes below zero and division is
only chosen when it is exact, so a small model learns the arithmetic, not edge cases.
"""

from __future__ import annotations

import dataclasses
import random

OPS = "+-*/"
SYMBOL = {"+": "+", "-": "-", "*": "*", "/": "/"}
MAX_FACTOR = 9  # multipliers and divisors stay one digit so values do not explode with steps


@dataclasses.dataclass(frozen=True)
class Level:
    """One curriculum rung: operand digits, operations allowed, their count, story or bare."""

    digits: int
    n_ops: int
    ops: str = "+-"
    words: bool = False

    def __post_init__(self):
        if self.digits < 1 or self.n_ops < 1:
            raise ValueError(f"level needs digits >= 1 and n_ops >= 1, got {self}")
        if not self.ops or set(self.ops) - set(OPS):
            raise ValueError(f"level ops must be drawn from {OPS!r}, got {self.ops!r}")

    @property
    def n_steps(self) -> int:
        """Solution lines before the final answer: one per operation."""
        return self.n_ops


# The curriculum: bare one-step sums first, then longer expressions, then stories.
LEVELS: dict[int, Level] = {
    1: Level(digits=1, n_ops=1, ops="+-"),
    2: Level(digits=2, n_ops=1, ops="+-"),
    3: Level(digits=2, n_ops=2, ops="+-*"),
    4: Level(digits=2, n_ops=2, ops="+-", words=True),
    5: Level(digits=2, n_ops=3, ops="+-*/", words=True),
    6: Level(digits=3, n_ops=4, ops="+-*/", words=True),
    7: Level(digits=3, n_ops=5, ops="+-*/"),
}


@dataclasses.dataclass(frozen=True)
class ArithmeticProblem:
    """A question, its worked solution (one line per step) and the integer answer."""

    question: str
    steps: tuple[str, ...]
    answer: int

    @property
    def solution(self) -> str:
        """The steps, then `#### N`: the GSM8K layout the answer extractor looks for."""
        return "\n".join((*self.steps, f"#### {self.answer}"))


def resolve_level(level: int | Level) -> Level:
    """A `Level` from a curriculum number (1..7) or a `Level` itself."""
    if isinstance(level, Level):
        return level
    if level not in LEVELS:
        raise ValueError(f"unknown arithmetic level {level!r}; choose 1..{max(LEVELS)} "
                         "or pass a Level(digits=, n_ops=, ops=, words=)")
    return LEVELS[level]


def _operand(rng: random.Random, digits: int) -> int:
    # At least 1 so a step always changes something; up to the largest `digits`-digit number.
    return rng.randint(1, 10**digits - 1)


def _divisors(n: int) -> list[int]:
    return [d for d in range(2, MAX_FACTOR + 1) if n % d == 0 and n // d >= 1]


def _draw_op(rng: random.Random, level: Level, value: int) -> tuple[str, int]:
    """One (operation, operand) that keeps the running value a non-negative integer."""
    candidates = list(level.ops)
    if value == 0 or not _divisors(value):
        candidates = [op for op in candidates if op != "/"]
    if value == 0:
        candidates = [op for op in candidates if op != "-"]
    op = rng.choice(candidates or ["+"])
    if op == "+":
        return op, _operand(rng, level.digits)
    if op == "-":
        return op, rng.randint(1, min(value, 10**level.digits - 1))
    if op == "*":
        return op, rng.randint(2, MAX_FACTOR)
    return op, rng.choice(_divisors(value))


def _apply(value: int, op: str, operand: int) -> int:
    if op == "+":
        return value + operand
    if op == "-":
        return value - operand
    if op == "*":
        return value * operand
    return value // operand


def _chain(rng: random.Random, level: Level) -> tuple[int, list[tuple[str, int, int, int]]]:
    """The start value and (op, operand, before, after) for each operation, applied in order."""
    start = _operand(rng, level.digits)
    value, ops = start, []
    for _ in range(level.n_ops):
        op, operand = _draw_op(rng, level, value)
        after = _apply(value, op, operand)
        ops.append((op, operand, value, after))
        value = after
    return start, ops


# --- bare expressions --------------------------------------------------------------------

def _expression(start: int, ops: list[tuple[str, int, int, int]]) -> str:
    """The chain written with the fewest parentheses that keep left-to-right order."""
    text, low_precedence = str(start), False
    for op, operand, _, _ in ops:
        if op in "*/" and low_precedence:
            text = f"({text})"
        text = f"{text} {SYMBOL[op]} {operand}"
        low_precedence = op in "+-"  # parentheses (or a product) hide earlier sums
    return text


def _bare_problem(rng: random.Random, level: Level) -> ArithmeticProblem:
    start, ops = _chain(rng, level)
    expression = _expression(start, ops)
    question = rng.choice(("What is {e}?", "Compute {e}.", "Calculate {e}.")).format(e=expression)
    steps = tuple(f"{before} {SYMBOL[op]} {operand} = {after}"
                  for op, operand, before, after in ops)
    return ArithmeticProblem(question, steps, ops[-1][3])


# --- word problems -----------------------------------------------------------------------

NAMES = (("Ann", "She", "her"), ("Ben", "He", "him"), ("Carla", "She", "her"),
         ("Dev", "He", "him"), ("Eve", "She", "her"), ("Farid", "He", "him"),
         ("Grace", "She", "her"), ("Hiro", "He", "him"), ("Iris", "She", "her"),
         ("Jonas", "He", "him"), ("Kemi", "She", "her"), ("Luis", "He", "him"))
OBJECTS = ("apples", "marbles", "stickers", "books", "pencils", "coins", "cards", "shells",
           "cookies", "stamps", "balloons", "beads")

# (sentence, step label); {p} pronoun, {o} objects, {n} operand, {f} a friend's name.
# Sentences never put {n} before {o}, so "1 apples" cannot happen.
EVENTS: dict[str, tuple[tuple[str, str], ...]] = {
    "+": (("{p} buys {n} more.", "Buys {n} more"),
          ("{f} gives {q} {n} more.", "Gets {n} from {f}"),
          ("{p} finds {n} more.", "Finds {n} more")),
    "-": (("{p} gives {n} to {f}.", "Gives {n} to {f}"),
          ("{p} loses {n} of them.", "Loses {n}"),
          ("{p} sells {n} of them.", "Sells {n}")),
    "*": (("Then the number of {o} {pl} has becomes {n} times as large.", "{n} times as many"),
          ("{p} ends up with {n} times as many {o} as before.", "{n} times as many")),
    "/": (("{p} splits the {o} into {n} equal groups and keeps one group.",
           "Keeps one of {n} equal groups"),
          ("{p} packs the {o} into {n} equal bags and keeps one bag.",
           "Keeps one of {n} equal bags")),
}


def _word_problem(rng: random.Random, level: Level) -> ArithmeticProblem:
    start, ops = _chain(rng, level)
    (name, pronoun, object_pronoun), friend = rng.sample(NAMES, 2)
    objects = rng.choice(OBJECTS)
    # Every object noun is a plain "-s" plural, so the singular drops the last letter.
    sentences = [f"{name} has {start} {objects if start != 1 else objects[:-1]}."]
    steps = []
    for op, operand, before, after in ops:
        sentence, label = rng.choice(EVENTS[op])
        fields = dict(p=pronoun, pl=pronoun.lower(), q=object_pronoun, o=objects, n=operand,
                      f=friend[0])
        sentences.append(sentence.format(**fields))
        steps.append(f"{label.format(**fields)}: {before} {SYMBOL[op]} {operand} = {after}")
    sentences.append(f"How many {objects} does {name} have now?")
    return ArithmeticProblem(" ".join(sentences), tuple(steps), ops[-1][3])


def generate_problem(rng: random.Random, level: int | Level) -> ArithmeticProblem:
    """One problem at `level` (a curriculum number 1..7 or a `Level`), drawn from `rng`."""
    spec = resolve_level(level)
    return _word_problem(rng, spec) if spec.words else _bare_problem(rng, spec)


def generate_problems(seed: int, level: int | Level, n: int) -> list[ArithmeticProblem]:
    """`n` problems from one seed (repeats possible: dedupe where a split needs it)."""
    rng = random.Random(seed)
    return [generate_problem(rng, level) for _ in range(n)]
