"""Datatrove's Gopher repetition filter with the same rules, computed in C-speed passes.

`GopherRepetitionFilter` (Gopher's table A1: duplicate lines and paragraphs, the top 2/3/4-gram,
duplicated 5..10-grams) counts n-grams in Python loops, one string join and one set lookup a
word for each of nine n-gram sizes: on the demo WARC's long documentation pages it was half of
the filter stage's time. `FastGopherRepetitionFilter` keeps its thresholds, its order of checks
and its reason strings, and computes the same numbers with `Counter`, `map` and `zip`, whose
loops run in C:

- duplicate lines / paragraphs: (items - distinct items) and (their characters - the distinct
  items' characters), which is what datatrove's first-seen loop adds up;
- top n-gram: a `Counter` over the " "-joined n-grams; `most_common(1)` breaks ties by first
  appearance, as datatrove's own `Counter` does;
- duplicated n-grams: datatrove walks the "".joined n-grams, and on a repeat adds its length
  and jumps n words, without recording the n-grams it jumps over. An n-gram that occurs once in
  the page can never be a repeat nor make another one a repeat, so only the positions of
  n-grams occurring more than once need the walk: none on most pages for the long n-grams.
  The walk stops once the page is already over the threshold (the decision cannot change).

`config.gopher_repetition.fast` chooses it (True, the default) or datatrove's class (False);
tests/curate/test_fast_repetition.py checks that both decide alike.
"""

from __future__ import annotations

from collections import Counter
from itertools import compress

from datatrove.data import Document
from datatrove.pipeline.filters import GopherRepetitionFilter
from datatrove.utils.text import split_into_words


def _n_grams(words: list[str], n: int, separator: str) -> list[str]:
    """The same strings as datatrove's `get_n_grams` (separator " ") or the joins inside
    `find_all_duplicate` (separator "")."""
    return list(map(separator.join, zip(*(words[i:] for i in range(n)))))


def duplicates(items: list[str]) -> tuple[int, int]:
    """datatrove's `find_duplicates`: (repeated items, their characters)."""
    distinct = Counter(items)
    return (len(items) - len(distinct),
            sum(map(len, items)) - sum(map(len, distinct)))


def top_n_gram_chars(words: list[str], n: int) -> int | None:
    """datatrove's `find_top_duplicate` of the n-grams; None when the page has none."""
    counts = Counter(_n_grams(words, n, " "))
    if not counts:
        return None
    gram, count = counts.most_common(1)[0]
    return len(gram) * count


def duplicated_n_gram_chars(words: list[str], n: int, text_length: int,
                            fraction: float) -> int:
    """datatrove's `find_all_duplicate(words, n)`, or, once `chars / text_length > fraction`
    already holds, the count so far (enough for the filter's decision)."""
    grams = _n_grams(words, n, "")
    counts = Counter(grams)
    if len(counts) == len(grams):
        return 0
    # positions whose n-gram occurs more than once, in order
    repeated = compress(range(len(grams)), map((1).__lt__, map(counts.__getitem__, grams)))
    seen: set[str] = set()
    chars, next_visited = 0, 0
    for i in repeated:
        if i < next_visited:  # inside the n words datatrove jumped over
            continue
        gram = grams[i]
        if gram in seen:
            chars += len(gram)
            if chars / text_length > fraction:
                return chars
            next_visited = i + n
        else:
            seen.add(gram)
    return chars


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

        words = split_into_words(text, self.language)

        for n, n_frac in self.top_n_grams:
            top_char_length = top_n_gram_chars(words, n)
            if top_char_length is None:
                continue
            if top_char_length / len(text) > n_frac:
                return False, f"top_{n}_gram"

        for n, n_frac in self.dup_n_grams:
            n_duplicates_char = duplicated_n_gram_chars(words, n, len(text), n_frac)
            if n_duplicates_char / len(text) > n_frac:
                return False, f"duplicated_{n}_n_grams"

        return True
