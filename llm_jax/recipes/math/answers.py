"""Final answers: pull one out of a completion, and decide whether it equals the reference.

    extract_answer("... so she has 17 apples.\\n#### 17")   # "17"
    extract_answer("3 + 5 = 8, or maybe 9")                # None: no marker, numbers disagree
    check(completion, "17")                                # AnswerCheck(answer="17", correct=True)

Trust order: the last `#### N`, `\\boxed{...}`, "the answer is N". Without a marker, only a
completion whose numbers all agree counts, so a lucky guess is never credited. Integers are
compared exactly after normalizing; anything else goes to `math-verify`."""

from __future__ import annotations

import dataclasses
import re
import threading
from decimal import Decimal, InvalidOperation

# A number as people write it: sign, optional $, thousands commas, decimals, a/b fractions.
_NUMBER = (r"[-+\u2212]?\s?\$?\s?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?(?:/\d+)?"
           r"|[-+\u2212]?\.\d+")
NUMBER = re.compile(_NUMBER)
INTEGER = re.compile(r"-?\d+")
# After "####" or "the answer is": spaces, bold marks, `$`, `\(` and a colon may come first.
_LEAD = re.compile(r"[\s*:=$]*(?:\\\(|\\\[)?\s*")
# An operator right after the number means it was the start of an expression, not the answer;
# a comma and digit means a malformed number ("1,23") or a list. Either way: no answer.
_EXPRESSION_CONTINUES = re.compile(r"\s*(?:[-+*/^=×÷]|\\times|\\cdot)\s*[\w(\\]|,\s*\d")
_FRAC = re.compile(r"^(-?)\\[dt]?frac\{\s*(-?\d+)\s*\}\{\s*(\d+)\s*\}$")
_HASHES = re.compile(r"####")
_ANSWER_IS = re.compile(r"\banswer\s*(?:is|:|=)", re.IGNORECASE)
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")


@dataclasses.dataclass(frozen=True)
class AnswerCheck:
    """What was extracted from a completion (None = no answer) and whether it is right."""

    answer: str | None
    correct: bool

    @property
    def has_answer(self) -> bool:
        return self.answer is not None


def normalize_number(token: str) -> str:
    """`-$1,234.50` → `-1234.5`; `12.0` → `12`; fractions keep their terms (`6/8`)."""
    text = re.sub(r"[\s$,]", "", token).replace("\u2212", "-").lstrip("+")
    negative = text.startswith("-")
    text = text.lstrip("-")
    if "/" in text:
        value = text
    else:
        try:
            number = Decimal(text)
        except InvalidOperation:
            return token.strip()
        # Integral values print without a point so `12.0` and `12` compare as integers.
        value = str(number.to_integral_value()) if number == number.to_integral_value() \
            else format(number.normalize(), "f")
    if value in ("0", "0/1") or re.fullmatch(r"0/\d+", value):
        return value
    return f"-{value}" if negative else value


def _braced(text: str, start: int) -> str | None:
    """The text inside the braces that open at `text[start - 1]`, or None if unbalanced."""
    depth = 1
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start:i]
    return None


def normalize_answer(text: str) -> str | None:
    """A reference or boxed answer in canonical form: a normalized number, `a/b`, or LaTeX."""
    text = text.strip().strip("$").strip()
    text = re.sub(r"^\\[(\[]|\\[)\]]$", "", text).strip().rstrip(".").strip()
    if not text:
        return None
    if re.fullmatch(_NUMBER, text):
        return normalize_number(text)
    fraction = _FRAC.match(text.replace("\\left", "").replace("\\right", ""))
    if fraction:
        sign, numerator, denominator = fraction.groups()
        return normalize_number(f"{sign}{numerator}/{denominator}")
    return text


def _leading_answer(text: str) -> str | None:
    """The answer that starts `text` (what follows a marker), or None if there is none."""
    text = text[_LEAD.match(text).end():]
    boxed = _BOXED.match(text)
    if boxed:
        inner = _braced(text, boxed.end())
        return normalize_answer(inner) if inner is not None else None
    if re.match(r"-?\\[dt]?frac\{", text):
        end = text.find("}", text.find("}") + 1)
        return normalize_answer(text[:end + 1]) if end > 0 else None
    number = NUMBER.match(text)
    if not number or _EXPRESSION_CONTINUES.match(text, number.end()):
        return None
    return normalize_number(number.group())


def _last_boxed(text: str) -> str | None:
    starts = list(_BOXED.finditer(text))
    if not starts:
        return None
    inner = _braced(text, starts[-1].end())
    return normalize_answer(inner) if inner is not None else None


def _unmarked(text: str) -> str | None:
    """The number of a marker-less completion, only if every number in it agrees."""
    values = {normalize_number(m.group()) for m in NUMBER.finditer(text)}
    return values.pop() if len(values) == 1 else None


def extract_answer(completion: str) -> str | None:
    """The final answer of a completion in normalized form, or None when there is no answer."""
    hashes = list(_HASHES.finditer(completion))
    if hashes:
        line = completion[hashes[-1].end():].split("\n", 1)[0]
        return _leading_answer(line)
    if _BOXED.search(completion):
        return _last_boxed(completion)
    said = list(_ANSWER_IS.finditer(completion))
    if said:
        return _leading_answer(completion[said[-1].end():])
    return _unmarked(completion)


def opens_with_answer(completion: str) -> bool:
    """Whether the first line states the answer ("The answer is 85."): the reply answered
    before any working, as opposed to working first and closing with `#### N`."""
    first_line = completion.lstrip().split("\n", 1)[0]
    return bool(_ANSWER_IS.search(first_line)) and extract_answer(first_line) is not None


def answers_at_once(completion: str) -> bool:
    """Whether the reply is its final answer line alone (`#### N`, no working before it)."""
    lines = [line.strip() for line in completion.splitlines() if line.strip()]
    return len(lines) == 1 and bool(_HASHES.match(lines[0]))


def _math_verify(reference: str, answer: str) -> bool:
    from math_verify import parse, verify

    # math-verify's timeouts use SIGALRM, which only works on the main thread; off it (a reward
    # computed in a worker thread) the inputs are short extracted answers, so run without one.
    timeout = 5 if threading.current_thread() is threading.main_thread() else None
    # Inside `$...$` math-verify reads LaTeX and plain forms alike ("x^2+1", "3/4", "\\frac").
    gold = parse(f"${reference}$", parsing_timeout=timeout)
    pred = parse(f"${answer}$", parsing_timeout=timeout)
    return bool(gold and pred and verify(gold, pred, timeout_seconds=timeout))


def is_equivalent(answer: str | None, reference: str) -> bool:
    """Whether an extracted answer equals the reference: exactly for integers, else math-verify."""
    if answer is None:
        return False
    answer_norm, reference_norm = normalize_answer(answer), normalize_answer(str(reference))
    if answer_norm is None or reference_norm is None:
        return False
    if INTEGER.fullmatch(answer_norm) and INTEGER.fullmatch(reference_norm):
        return int(answer_norm) == int(reference_norm)
    if answer_norm == reference_norm:
        return True
    return _math_verify(reference_norm, answer_norm)


def check(completion: str, reference: str) -> AnswerCheck:
    """Extract a completion's answer and compare it with the reference answer."""
    answer = extract_answer(completion)
    return AnswerCheck(answer, is_equivalent(answer, reference))
