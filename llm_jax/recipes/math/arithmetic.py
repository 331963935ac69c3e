"""The project's own arithmetic and word-problem generator, with levels for a curriculum.

    problem = generate_problem(random.Random(0), level=4)
    problem.solution                     # one step per line, then "#### 9"
    problem.computation                  # "12 + 5 = 17 ; 17 - 8 = 9": the split key
    problem.worked_steps("column")      # each sum worked digit by digit

`column` working spells out carries and borrows so each token needs one one-digit fact (as
Lee et al. 2023 teach small transformers arithmetic). A level fixes operand digits and which
operations appear, and how many. Answers are non-negative integers."""

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


# The curriculum: bare one-digit chains first, then larger sums, then stories. Level 1 takes
# two operations: one alone has only ~160 distinct computations, too few for a held-out set
# of 50 that is never trained on.
LEVELS: dict[int, Level] = {
    1: Level(digits=1, n_ops=2, ops="+-"),
    2: Level(digits=2, n_ops=1, ops="+-"),
    3: Level(digits=2, n_ops=2, ops="+-*"),
    4: Level(digits=2, n_ops=2, ops="+-", words=True),
    5: Level(digits=2, n_ops=3, ops="+-*/", words=True),
    6: Level(digits=3, n_ops=4, ops="+-*/", words=True),
    7: Level(digits=3, n_ops=5, ops="+-*/"),
}


PLACES = ("units", "tens", "hundreds", "thousands", "ten-thousands", "hundred-thousands",
          "millions")
WORKINGS = ("plain", "column")


@dataclasses.dataclass(frozen=True)
class Operation:
    """One step of a chain: `left op right = result`."""

    op: str
    left: int
    right: int
    result: int

    def __str__(self) -> str:
        return f"{self.left} {SYMBOL[self.op]} {self.right} = {self.result}"


def place(i: int) -> str:
    """The name of column i (0 = units); past millions, the power of ten."""
    return PLACES[i] if i < len(PLACES) else f"10^{i}"


def _digits(n: int) -> list[int]:
    """Least significant first: 305 -> [5, 0, 3]."""
    return [int(c) for c in reversed(str(n))]


def _carry_columns(columns: list[tuple[str, int]]) -> list[str]:
    """Lines for columns worked from the units up, each `(terms, value)` before the carry
    ("7 + 8", 15); the carry joins the next column's terms and a last carry writes itself."""
    lines, carry = [], 0
    for i, (terms, value) in enumerate(columns):
        total = value + carry
        line = f"{place(i)}: {terms}{f' + {carry}' if carry else ''} = {total}, " \
               f"write {total % 10}"
        carry = total // 10
        lines.append(line + (f", carry {carry}" if carry else ""))
    if carry:
        lines.append(f"{place(len(lines))}: carry {carry}, write {carry}")
    return lines


def _column_add(a: int, b: int) -> list[str]:
    x, y = _digits(a), _digits(b)
    pad = lambda d, i: d[i] if i < len(d) else 0  # noqa: E731
    return _carry_columns([(f"{pad(x, i)} + {pad(y, i)}", pad(x, i) + pad(y, i))
                           for i in range(max(len(x), len(y)))])


def _column_multiply(a: int, factor: int) -> list[str]:
    return _carry_columns([(f"{u} * {factor}", u * factor) for u in _digits(a)])


def _column_subtract(a: int, b: int) -> list[str]:
    x, y = _digits(a), _digits(b)
    lines, borrow = [], 0
    for i in range(len(x)):
        u, v = x[i], (y[i] if i < len(y) else 0)
        top = f"{u} - 1" if borrow else f"{u}"
        value = u - borrow
        if value < v:  # borrow ten from the next column
            lines.append(f"{place(i)}: {top} - {v} borrow 1, 1{u}"
                         f"{' - 1' if borrow else ''} - {v} = {value + 10 - v}, "
                         f"write {value + 10 - v}")
            borrow = 1
        else:
            lines.append(f"{place(i)}: {top} - {v} = {value - v}, write {value - v}")
            borrow = 0
    return lines


def is_table_fact(step: Operation) -> bool:
    """A step a pupil knows by heart: the addition table (both operands below 20, one below
    10), a one-digit product, or an exact division by a one-digit divisor."""
    if step.op in "+-":
        return max(step.left, step.right) < 20 and min(step.left, step.right) < 10
    if step.op == "*":
        return step.left < 10 and step.right < 10
    return True


def column_lines(step: Operation) -> list[str]:
    """`step` worked digit by digit: a line per column, then the result line. A table fact is
    its result line alone."""
    if is_table_fact(step):
        return [str(step)]
    if step.op == "+":
        work = _column_add(step.left, step.right)
    elif step.op == "-":
        work = _column_subtract(step.left, step.right)
    else:  # "*": the factor is always one digit (MAX_FACTOR), the other may be long
        big, small = max(step.left, step.right), min(step.left, step.right)
        work = _column_multiply(big, small)
    return [*work, str(step)]


@dataclasses.dataclass(frozen=True)
class ArithmeticProblem:
    """A question, its operations (with a label each in a story) and the integer answer."""

    question: str
    operations: tuple[Operation, ...]
    answer: int
    labels: tuple[str, ...] = ()  # word problems: "Buys 5 more" for each operation

    @property
    def steps(self) -> tuple[str, ...]:
        """One line per operation: "Buys 5 more: 12 + 5 = 17" or "12 + 5 = 17"."""
        return self.worked_steps("plain")

    @property
    def computation(self) -> str:
        """The arithmetic asked for, whatever the story: the key of the train/held-out split."""
        return " ; ".join(str(op) for op in self.operations)

    def worked_steps(self, working: str = "column") -> tuple[str, ...]:
        """The solution lines without the final answer: `plain` (one line per operation) or
        `column` (each sum worked digit by digit, see `column_lines`)."""
        if working not in WORKINGS:
            raise ValueError(f"working={working!r}; choose from {WORKINGS}")
        lines: list[str] = []
        for i, step in enumerate(self.operations):
            label = f"{self.labels[i]}: " if self.labels else ""
            work = column_lines(step) if working == "column" else [str(step)]
            if len(work) > 1:  # the step (with its story label), then its columns
                lines.append(f"{label}{step.left} {SYMBOL[step.op]} {step.right}")
                lines += work
            else:
                lines.append(label + work[-1])
        return tuple(lines)

    def worked_solution(self, working: str = "column") -> str:
        """The worked lines, then `#### N`: the GSM8K layout the answer extractor reads."""
        return "\n".join((*self.worked_steps(working), f"#### {self.answer}"))

    @property
    def solution(self) -> str:
        return self.worked_solution("plain")


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


def _chain(rng: random.Random, level: Level) -> tuple[int, list[Operation]]:
    """The start value and each operation, applied in order."""
    start = _operand(rng, level.digits)
    value, ops = start, []
    for _ in range(level.n_ops):
        op, operand = _draw_op(rng, level, value)
        after = _apply(value, op, operand)
        ops.append(Operation(op, value, operand, after))
        value = after
    return start, ops


# --- bare expressions --------------------------------------------------------------------

def _expression(start: int, ops: list[Operation]) -> str:
    """The chain written with the fewest parentheses that keep left-to-right order."""
    text, low_precedence = str(start), False
    for op, operand in ((o.op, o.right) for o in ops):
        if op in "*/" and low_precedence:
            text = f"({text})"
        text = f"{text} {SYMBOL[op]} {operand}"
        low_precedence = op in "+-"  # parentheses (or a product) hide earlier sums
    return text


def _bare_problem(rng: random.Random, level: Level) -> ArithmeticProblem:
    start, ops = _chain(rng, level)
    expression = _expression(start, ops)
    question = rng.choice(("What is {e}?", "Compute {e}.", "Calculate {e}.")).format(e=expression)
    return ArithmeticProblem(question, tuple(ops), ops[-1].result)


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
    labels = []
    for step in ops:
        sentence, label = rng.choice(EVENTS[step.op])
        fields = dict(p=pronoun, pl=pronoun.lower(), q=object_pronoun, o=objects, n=step.right,
                      f=friend[0])
        sentences.append(sentence.format(**fields))
        labels.append(label.format(**fields))
    sentences.append(f"How many {objects} does {name} have now?")
    return ArithmeticProblem(" ".join(sentences), tuple(ops), ops[-1].result, tuple(labels))


def generate_problem(rng: random.Random, level: int | Level) -> ArithmeticProblem:
    """One problem at `level` (a curriculum number 1..7 or a `Level`), drawn from `rng`."""
    spec = resolve_level(level)
    return _word_problem(rng, spec) if spec.words else _bare_problem(rng, spec)


def generate_problems(seed: int, level: int | Level, n: int) -> list[ArithmeticProblem]:
    """`n` problems from one seed (repeats possible: dedupe where a split needs it)."""
    rng = random.Random(seed)
    return [generate_problem(rng, level) for _ in range(n)]
