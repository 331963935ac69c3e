"""Step credit: a wrong reply's negative advantage only from its first wrong line on.

Outcome rewards blame every token of a wrong reply, the right working lines before its first
mistake included; with deterministic working (a column sum has exactly one right next line)
the mistake can be located by comparing the reply with the reference working line by line.
`rl.step_credit=True` keeps a negative advantage only on the tokens from that line on (the
lines before it are left alone); right replies and rows without a reference are unchanged.

    first_wrong_line("7 + 8\\nunits: 7 + 8 = 14", "7 + 8\\nunits: 7 + 8 = 15")   # 1
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def first_wrong_line(completion: str, solution: str) -> int | None:
    """The index (in `completion.split("\\n")`) of the first non-blank line that differs from
    the reference's line at the same place, or None when every line written matches."""
    reference = [line.strip() for line in solution.strip().splitlines() if line.strip()]
    seen = 0
    for index, line in enumerate(completion.split("\n")):
        if not line.strip():
            continue
        if seen >= len(reference) or line.strip() != reference[seen]:
            return index
        seen += 1
    return None


def line_start_token(tokens: Sequence[int], line: int, decode) -> int:
    """The first token of line `line` of the decoded `tokens` (the token that holds the
    `line`-th newline's next character; len(tokens) if there is none)."""
    if line <= 0:
        return 0
    for t in range(len(tokens)):
        text = decode(tokens[:t + 1])
        if text.count("\n") >= line:
            # the newline ends this token's text (the line starts at the next), or the line
            # starts inside this token
            return t if text.split("\n", line)[-1] else t + 1
    return len(tokens)


def blame_starts(tokens: np.ndarray, lengths: np.ndarray, texts: Sequence[str],
                 metas: Sequence[dict], decode) -> np.ndarray:
    """int [R]: per row, the first completion token a negative advantage applies to (0 when
    the row has no reference `meta['solution']` or no wrong line)."""
    starts = np.zeros(len(texts), np.int32)
    for row, (text, meta) in enumerate(zip(texts, metas)):
        solution = meta.get("solution")
        wrong = first_wrong_line(text, solution) if solution else None
        if wrong:
            ids = [int(t) for t in tokens[row, :int(lengths[row])]]
            starts[row] = line_start_token(ids, wrong, decode)
    return starts


def token_advantages(advantages: np.ndarray, starts: np.ndarray, steps: int) -> np.ndarray:
    """[R, T]: each row's advantage on every token, except a negative one before its start."""
    adv = np.broadcast_to(advantages[:, None], (len(advantages), steps)).astype(np.float32)
    before = np.arange(steps)[None, :] < starts[:, None]
    return np.where((adv < 0) & before, np.float32(0), adv)
