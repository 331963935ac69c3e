"""Datatrove's Gopher quality filter with the same rules, its per-character loops in C.

`GopherQualityFilter` tests each word of a page character by character in Python generator
expressions, twice: "has a character that is not punctuation" (`any(ch not in
PUNCTUATION_SET for ch in w)`) and "has a letter" (`any(c.isalpha() for c in w)`). On the
demo WARC's ~3,600-word pages those two loops were most of the filter's time once its words
came from the fast splitter. `FastGopherQualityFilter` keeps datatrove's checks, their order,
thresholds and reason strings (its `filter` follows datatrove's line for line) and answers the
two questions with C-level calls that say exactly the same:

- a word has a non-punctuation character iff stripping every punctuation character from its
  ends leaves something (`str.strip` stops at the first character outside the set);
- a word has a letter iff it is all letters (`str.isalpha`) or a regular expression of every
  character for which `str.isalpha()` is true (built once from Python's own Unicode tables,
  ~70 ms) finds one in it.

`config.gopher_quality.fast` chooses it (True, the default) or datatrove's class (False);
tests/curate/test_fast_gopher_quality.py checks that both decide alike.
"""

from __future__ import annotations

import functools
import operator
import re
import sys
from itertools import compress, repeat

import numpy as np
from datatrove.data import Document
from datatrove.pipeline.filters import GopherQualityFilter
from datatrove.pipeline.filters.gopher_quality_filter import PUNCTUATION_SET
from datatrove.utils.text import split_into_words

_PUNCTUATION = "".join(sorted(PUNCTUATION_SET))


@functools.cache
def letter_pattern() -> re.Pattern:
    """One character for which `str.isalpha()` is true, as a character class of ranges."""
    letters = [c for c in range(sys.maxunicode + 1) if chr(c).isalpha()]
    ranges, start = [], letters[0]
    for previous, current in zip(letters, letters[1:] + [-1]):
        if current != previous + 1:
            ranges.append(re.escape(chr(start)) if start == previous
                          else f"{re.escape(chr(start))}-{re.escape(chr(previous))}")
            start = current
    return re.compile(f"[{''.join(ranges)}]")


def non_symbol_words(words: list[str]) -> list[str]:
    """datatrove's `[w for w in words if any(ch not in PUNCTUATION_SET for ch in w)]`."""
    return list(compress(words, map(str.strip, words, repeat(_PUNCTUATION))))


def words_with_letters(words: list[str]) -> int:
    """datatrove's `sum([any((c.isalpha() for c in w)) for w in words])`: the words made of
    letters only (`str.isalpha`, most of them), plus the others in which the pattern finds one."""
    only_letters = list(map(str.isalpha, words))
    others = compress(words, map(operator.not_, only_letters))
    return sum(only_letters) + sum(map(bool, map(letter_pattern().search, others)))


class FastGopherQualityFilter(GopherQualityFilter):
    """`GopherQualityFilter`'s decisions and reasons, faster (see the module docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        letter_pattern()  # built here, so that forked workers inherit it

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        # datatrove's `filter`, line for line, but for the two helpers above
        text = doc.text
        words = split_into_words(text, self.language)
        n_words = len(words)

        non_symbol = non_symbol_words(words)
        n_non_symbol_words = len(non_symbol)

        if self.min_doc_words and n_non_symbol_words < self.min_doc_words:
            return False, "gopher_short_doc"
        if self.max_doc_words and n_non_symbol_words > self.max_doc_words:
            return False, "gopher_long_doc"

        avg_n_words = np.mean([len(w) for w in non_symbol])
        if self.min_avg_word_length and avg_n_words < self.min_avg_word_length:
            return False, "gopher_below_avg_threshold"
        if self.max_avg_word_length and avg_n_words > self.max_avg_word_length:
            return False, "gopher_above_avg_threshold"

        if self.max_symbol_word_ratio and text.count("#") / n_words > self.max_symbol_word_ratio:
            return False, "gopher_too_many_hashes"
        if self.max_symbol_word_ratio and (
                (text.count("...") + text.count("…")) / n_words > self.max_symbol_word_ratio):
            return False, "gopher_too_many_ellipsis"

        lines = text.splitlines()
        if (
            self.max_bullet_lines_ratio
            and sum(s.lstrip().startswith("•") or s.lstrip().startswith("-") for s in lines)
            / len(lines) > self.max_bullet_lines_ratio
        ):
            return False, "gopher_too_many_bullets"
        if (
            self.max_ellipsis_lines_ratio
            and sum(s.rstrip().endswith("...") or s.rstrip().endswith("…") for s in lines)
            / len(lines) > self.max_ellipsis_lines_ratio
        ):
            return False, "gopher_too_many_end_ellipsis"

        if (
            self.max_non_alpha_words_ratio
            and words_with_letters(words) / n_words < self.max_non_alpha_words_ratio
        ):
            return False, "gopher_below_alpha_threshold"

        if (self.min_stop_words
                and len(self.stop_words.intersection(set(words))) < self.min_stop_words):
            return False, "gopher_enough_stop_words"

        return True
