"""The calculator tool: a small, safe arithmetic evaluator for the model's tool calls.

    evaluate("12 × (3 + 4)")   # "84"
    evaluate("__import__('os')")   # CalculatorError

EXPR is untrusted model output: only digits, ".", + - * / × ÷, parentheses and spaces are
allowed, and the `ast` is walked accepting only numbers and those operators (never `eval`).
Arithmetic is exact (`Fraction`: 0.1 + 0.2 gives "0.3"); length, nesting and magnitude limits
keep a call to microseconds."""

from __future__ import annotations

import ast
import math
import re
from fractions import Fraction

MAX_CHARS = 200  # a call longer than this is not arithmetic a model should need help with
MAX_DEPTH = 20  # nesting of the syntax tree (parentheses, chained operators)
MAX_ABS = Fraction(10) ** 30  # every intermediate and literal stays below this
DECIMALS = 6  # non-integral results are rounded to this many decimal places

_BINARY = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}
# Characters people (and the SFT data) write for the four operations, mapped to Python's.
_SYMBOLS = str.maketrans({"×": "*", "÷": "/", "−": "-", "–": "-"})
_ALLOWED = re.compile(r"[0-9.\s+\-*/()]*")  # decimal numbers only: no names, 0x10, 1e9
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")  # "1,000" is a number; "1,2" is not


class CalculatorError(ValueError):
    """The expression is not plain arithmetic, or it cannot be evaluated (e.g. 1/0)."""


def _check(value: Fraction) -> Fraction:
    if abs(value) >= MAX_ABS:
        raise CalculatorError("number too large")
    return value


def _walk(node: ast.AST, depth: int) -> Fraction:
    if depth > MAX_DEPTH:
        raise CalculatorError("expression nested too deeply")
    if isinstance(node, ast.Constant):
        # bool is an int subclass: `True + 1` must not pass as arithmetic.
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise CalculatorError(f"not a number: {node.value!r}")
        if isinstance(node.value, float) and not math.isfinite(node.value):
            raise CalculatorError("number too large")
        # Through str: the literal "0.1" means one tenth, not the nearest binary double.
        return _check(Fraction(str(node.value)) if isinstance(node.value, float)
                      else Fraction(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _walk(node.operand, depth + 1)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _walk(node.left, depth + 1), _walk(node.right, depth + 1)
        if isinstance(node.op, ast.Div) and right == 0:
            raise CalculatorError("division by zero")
        return _check(_BINARY[type(node.op)](left, right))
    raise CalculatorError(f"only numbers, + - * / and parentheses are allowed, "
                          f"not {type(node).__name__}")


def _paren_depth(source: str) -> int:
    depth = deepest = 0
    for char in source:
        depth += (char == "(") - (char == ")")
        deepest = max(deepest, depth)
    return deepest


def format_number(value: Fraction) -> str:
    """Integers without a decimal point; other values rounded to `DECIMALS` places with
    trailing zeros dropped ("3.5", "0.333333")."""
    if value.denominator == 1:
        return str(value.numerator)
    text = f"{float(round(value, DECIMALS)):.{DECIMALS}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def evaluate(expression: str) -> str:
    """The value of an arithmetic expression as text, or `CalculatorError`."""
    if len(expression) > MAX_CHARS:
        raise CalculatorError(f"expression longer than {MAX_CHARS} characters")
    source = _THOUSANDS.sub("", expression.translate(_SYMBOLS)).strip()
    if not source:
        raise CalculatorError("empty expression")
    if not _ALLOWED.fullmatch(source):
        raise CalculatorError("only numbers, + - * / and parentheses are allowed")
    if _paren_depth(source) > MAX_DEPTH:  # the syntax tree does not record parentheses
        raise CalculatorError("expression nested too deeply")
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError):  # ValueError: null bytes in the source
        raise CalculatorError(f"not an arithmetic expression: {expression!r}") from None
    return format_number(_walk(tree.body, 0))
