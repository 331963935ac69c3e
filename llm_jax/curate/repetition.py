"""Datatrove's Gopher repetition filter with the same rules, without a string per n-gram.

`GopherRepetitionFilter` (Gopher's table A1: duplicate lines and paragraphs, the top 2/3/4-gram,
duplicated 5..10-grams) builds every n-gram of a page as a string for each of nine n-gram
sizes and counts them: on the demo WARC's long documentation pages (~3,600 words) that was
half of the filter stage's time, the joins and hashes more than its Python loops.
`FastGopherRepetitionFilter` keeps its thresholds, its order of checks and its reason strings,
and computes the same numbers:

- duplicate lines / paragraphs: (items - distinct items) and (their characters - the distinct
  items' characters), which is what datatrove's first-seen loop adds up;
- n-grams: datatrove's n-gram strings are slices of the words joined once (with " " for the
  top n-grams, with "" for the duplicated ones), so numpy hashes all of them at once from
  prefix sums (a polynomial hash mod 2**64). Equal strings have equal hashes, so an n-gram
  whose hash is unique on the page occurs once. Only n-grams whose hash repeats become
  strings, and the counts are made on those strings: a hash collision costs time, never a
  wrong count;
- top n-gram: the most frequent hash (the first to appear among ties, as datatrove's
  `Counter.most_common(1)` picks the first inserted); when its n-grams are all one string,
  that string and count are datatrove's, and otherwise (a collision) a `Counter` over the
  strings of every repeated n-gram, in page order, decides;
- duplicated n-grams: datatrove walks the n-grams, and on a repeat adds its length and jumps
  n words, without recording the n-grams it jumps over. An n-gram that occurs once can never
  be a repeat nor make another one a repeat, so the walk visits only the repeated ones, and
  stops once the page is already over the threshold (the decision cannot change).

`config.gopher_repetition.fast` chooses it (True, the default) or datatrove's class (False);
tests/curate/test_fast_repetition.py checks that both decide alike.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from datatrove.data import Document
from datatrove.pipeline.filters import GopherRepetitionFilter
from datatrove.utils.text import split_into_words

_BASE = 0x9E3779B97F4A7C15  # odd, so invertible mod 2**64
_powers = np.ones(1, np.uint64)  # _BASE**k mod 2**64, grown on demand
_inverse_powers = np.ones(1, np.uint64)  # _BASE**-k


def _power_tables(length: int) -> tuple[np.ndarray, np.ndarray]:
    global _powers, _inverse_powers
    if len(_powers) <= length:
        size = max(length + 1, 2 * len(_powers))
        _powers, _inverse_powers = (
            np.concatenate([np.ones(1, np.uint64), np.cumprod(np.full(size - 1, base, np.uint64))])
            for base in (_BASE, pow(_BASE, -1, 2**64)))
    return _powers, _inverse_powers


class _Slices:
    """Hashes of many slices text[a:b] at once: sum of char_j * BASE**(b - j), mod 2**64."""

    def __init__(self, text: str):
        self.text = text
        codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), np.uint32)
        powers, inverse = _power_tables(len(text))
        self.powers = powers
        self.prefix = np.zeros(len(text) + 1, np.uint64)
        np.cumsum(codes.astype(np.uint64) * inverse[:len(text)], out=self.prefix[1:])

    def hashes(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        return (self.prefix[ends] - self.prefix[starts]) * self.powers[ends]

    def strings(self, starts: np.ndarray, ends: np.ndarray) -> list[str]:
        return list(map(self.text.__getitem__, map(slice, starts.tolist(), ends.tolist())))


def _shared_hashes(hashes: np.ndarray) -> np.ndarray:
    """Positions, in order, whose hash occurs more than once."""
    order = np.argsort(hashes)
    ordered = hashes[order]
    same = ordered[1:] == ordered[:-1]
    shared = np.zeros(len(hashes), bool)
    shared[1:] |= same
    shared[:-1] |= same
    return np.sort(order[shared])


class PageNGrams:
    """The n-gram counts datatrove's rule needs, for one page's words."""

    def __init__(self, words: list[str]):
        self.words = words
        lengths = np.fromiter(map(len, words), np.int64, len(words))
        # word i is joined[offsets[i]:offsets[i + 1]]; in the " "-joined text it starts i later
        self.offsets = np.concatenate([np.zeros(1, np.int64), np.cumsum(lengths)])
        self.joined = _Slices("".join(words))
        self.spaced = _Slices(" ".join(words))

    def _span(self, n: int, spaced: bool) -> tuple[_Slices, np.ndarray, np.ndarray]:
        count = len(self.words) - n + 1
        starts, ends = self.offsets[:count], self.offsets[n:n + count]
        if not spaced:
            return self.joined, starts, ends
        gaps = np.arange(count, dtype=np.int64)
        return self.spaced, starts + gaps, ends + gaps + (n - 1)

    def top_chars(self, n: int) -> int | None:
        """datatrove's `find_top_duplicate(get_n_grams(words, n))`; None when there are none."""
        if len(self.words) < n or n < 1:
            return None
        slices, starts, ends = self._span(n, spaced=True)
        hashes = slices.hashes(starts, ends)
        # the most frequent hash, the first to appear among ties; its n-grams are one string
        # unless hashes collide (then count the strings)
        values, first, counts = np.unique(hashes, return_index=True, return_counts=True)
        top = np.flatnonzero(counts == counts.max())
        at = np.flatnonzero(hashes == values[top[np.argmin(first[top])]])
        grams = slices.strings(starts[at], ends[at])
        if grams.count(grams[0]) == len(grams):
            gram, count = grams[0], len(grams)
        else:
            shared = _shared_hashes(hashes)
            gram, count = Counter(slices.strings(starts[shared], ends[shared])).most_common(1)[0]
        if count == 1:  # every n-gram once: datatrove's Counter returns the first one
            return int(ends[0] - starts[0])
        return len(gram) * count

    def duplicated_chars(self, n: int, text_length: int = 1,
                         fraction: float = float("inf")) -> int:
        """datatrove's `find_all_duplicate(words, n)`, or, once `chars / text_length >
        fraction` already holds, the count so far (enough for the filter's decision)."""
        if len(self.words) < n or n < 1:
            return 0
        slices, starts, ends = self._span(n, spaced=False)
        shared = _shared_hashes(slices.hashes(starts, ends))
        if not len(shared):
            return 0
        grams = slices.strings(starts[shared], ends[shared])
        seen: set[str] = set()
        chars, next_visited = 0, 0
        for i, gram in zip(shared.tolist(), grams):
            if i < next_visited:  # inside the n words datatrove jumped over
                continue
            if gram in seen:
                chars += len(gram)
                if chars / text_length > fraction:
                    return chars
                next_visited = i + n
            else:
                seen.add(gram)
        return chars


def duplicates(items: list[str]) -> tuple[int, int]:
    """datatrove's `find_duplicates`: (repeated items, their characters)."""
    distinct = Counter(items)
    return (len(items) - len(distinct),
            sum(map(len, items)) - sum(map(len, distinct)))


class FastGopherRepetitionFilter(GopherRepetitionFilter):
    """`GopherRepetitionFilter`'s decisions and reasons, faster (see the module docstring)."""

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        # the same checks in the same order as datatrove's `filter`, line for line
        text = doc.text
        if not text:
            return False, "empty"

        paragraphs = self.paragraph_exp.split(text.strip())
        paragraphs_duplicates, char_duplicates = duplicates(paragraphs)
        if self.dup_para_frac and paragraphs_duplicates / len(paragraphs) > self.dup_para_frac:
            return False, "dup_para_frac"
        if self.dup_para_char_frac and char_duplicates / len(text) > self.dup_para_char_frac:
            return False, "dup_para_char_frac"

        lines = self._line_splitter.split(text)
        line_duplicates, char_duplicates = duplicates(lines)
        if self.dup_line_frac and line_duplicates / len(lines) > self.dup_line_frac:
            return False, "dup_line_frac"
        if self.dup_line_char_frac and char_duplicates / len(text) > self.dup_line_char_frac:
            return False, "dup_line_char_frac"

        n_grams = PageNGrams(split_into_words(text, self.language))

        for n, n_frac in self.top_n_grams:
            top_char_length = n_grams.top_chars(n)
            if top_char_length is None:
                continue
            if top_char_length / len(text) > n_frac:
                return False, f"top_{n}_gram"

        for n, n_frac in self.dup_n_grams:
            n_duplicates_char = n_grams.duplicated_chars(n, len(text), n_frac)
            if n_duplicates_char / len(text) > n_frac:
                return False, f"duplicated_{n}_n_grams"

        return True
