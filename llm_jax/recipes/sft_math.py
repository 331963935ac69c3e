"""SFT conversations that do arithmetic: word problems and calculator tool use.

Replies end with `#### N`, or open with "The answer is N." before the same working (what the
thinking tokens buy): `answer_first` is the share of replies written that way, 0 to 1.
Problems use the math tasks' split, so held-out ones are never trained."""

from __future__ import annotations

import random
from collections.abc import Iterator

from llm_jax.data.splits import normalize_question, split_of
from llm_jax.generate.calculator import evaluate
from llm_jax.recipes.math.arithmetic import SYMBOL, ArithmeticProblem, generate_problem

FINAL = "#### "


def reply(steps: list[str] | tuple[str, ...], answer: str, answer_first: bool) -> str:
    """Worked steps then `#### N`; or, answer first, "The answer is N." then the steps."""
    body = "\n".join(steps)
    if answer_first:
        return f"The answer is {answer}.\n{body}".rstrip("\n")
    return f"{body}\n{FINAL}{answer}" if body else f"{FINAL}{answer}"


def _record(question: str, content, kind: str, answer: str) -> dict:
    return {"messages": [{"role": "user", "content": question},
                         {"role": "assistant", "content": content}],
            "kind": kind, "answer": answer}


def drawn(rng: random.Random, share: float) -> bool:
    """True for a share of `share` of the draws (a reply's style). At 0 and 1 no number is
    drawn, so those mixtures are the same data whatever the share's type."""
    if share <= 0 or share >= 1:
        return share >= 1
    return rng.random() < share


def calculator_parts(problem: ArithmeticProblem) -> list[dict]:
    """The reply that hands each operation to the calculator: the call, its forced output, the
    next call on that result, then `#### N`. A word problem's story label leads its call."""
    parts: list[dict] = []
    for i, step in enumerate(problem.operations):
        # the line break after the previous output and this step's label, as one text part
        lead = ("\n" if i else "") + (f"{problem.labels[i]}: " if problem.labels else "")
        if lead:
            parts.append({"type": "text", "text": lead})
        parts += [{"type": "python", "text": f"{step.left} {SYMBOL[step.op]} {step.right}"},
                  {"type": "output", "text": str(step.result)}]
    return [*parts, {"type": "text", "text": f"\n{FINAL}{problem.answer}"}]


def arithmetic_conversation(rng: random.Random, *, levels: tuple[int, ...], answer_first: float,
                            heldout_fraction: float, working: str = "column",
                            calculator: float = 0.0, answer_only: float = 0.0
                            ) -> tuple[dict, str]:
    """A problem from our generator at a random level of `levels`, worked as `working` says
    (`column`: digit by digit; `plain`: one line per operation), or for a share `calculator`
    of the replies, each operation handed to the calculator, and for a share `answer_only`
    of the others, the answer alone (`#### N`)."""
    problem = generate_problem(rng, rng.choice(levels))
    # The split key of `tasks.sources.ArithmeticTask`: the computation, not the story, so the
    # same sums retold are on the same side as the math evaluation's held-out problems.
    split = split_of(problem.computation, heldout_fraction)
    answer = str(problem.answer)
    if drawn(rng, calculator):
        return _record(problem.question, calculator_parts(problem), "arithmetic", answer), split
    if drawn(rng, answer_only):
        return _record(problem.question, reply((), answer, False), "arithmetic", answer), split
    first = drawn(rng, answer_first)
    return _record(problem.question, reply(problem.worked_steps(working), answer, first),
                   "arithmetic", answer), split


def _gsm_steps(entry: dict) -> list[str]:
    """The generator's worked solution without its final `#### N` line (none if it has no
    solution: the reply is then the answer alone)."""
    cot = (entry.get("metadata") or {}).get("answer_cot") or ""
    lines = [line for line in cot.strip().splitlines() if not line.startswith(FINAL.strip())]
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def gsm_symbolic_conversations(seed: int, *, answer_first: float, heldout_fraction: float,
                               size: int) -> Iterator[tuple[dict, str]]:
    """`size` reasoning-gym `gsm_symbolic` problems from `seed`, as (record, split)."""
    import reasoning_gym  # imported here: it takes seconds and only this generator needs it

    rng = random.Random(f"{seed}:gsm_symbolic-answer-first")
    for entry in reasoning_gym.create_dataset("gsm_symbolic", size=size, seed=seed):
        answer = str(entry["answer"])
        question = entry["question"]
        split = split_of(normalize_question(question), heldout_fraction)
        first = drawn(rng, answer_first)
        yield _record(question, reply(_gsm_steps(entry), answer, first),
                      "gsm_symbolic", answer), split


CALC_QUESTIONS = ("What is {a} {op} {b}?", "Compute {a} {op} {b}.", "Please work out {a} {op} {b}.",
                  "Use the calculator: {a} {op} {b}", "How much is {a} {op} {b}?")
CALC_LEADS = ("Let me use the calculator. ", "I'll compute that. ", "Calculating: ")


def calculator_conversation(rng: random.Random, heldout_fraction: float) -> tuple[dict, str]:
    """An assistant that calls the calculator, reads the forced output, then answers."""
    op = rng.choice("+-*/")
    a, b = rng.randint(100, 9999), rng.randint(11, 999)
    if op == "/":  # exact division only: answers stay integers
        a = a * b
    elif op == "-" and b > a:
        a, b = b, a
    shown = {"*": "×", "/": "÷"}.get(op, op)
    expression = f"{a} {op} {b}"
    result = evaluate(expression)
    question = rng.choice(CALC_QUESTIONS).format(a=a, op=shown, b=b)
    content = [{"type": "text", "text": rng.choice(CALC_LEADS)},
               {"type": "python", "text": expression},
               {"type": "output", "text": result},
               {"type": "text", "text": f"\n{a} {shown} {b} = {result}\n{FINAL}{result}"}]
    split = split_of(normalize_question(expression), heldout_fraction, salt="sft-calculator")
    return _record(question, content, "calculator", result), split
