"""The fast Gopher repetition filter decides exactly as datatrove's: hand-made and generated pages.

Each check compares against datatrove's own class and helpers, run on the same text with the
same word splitter, so every expected value comes from datatrove, not from this file.
"""

import random

import pytest
from datatrove.data import Document
from datatrove.pipeline.filters import GopherRepetitionFilter
from datatrove.pipeline.filters.gopher_repetition_filter import (
    find_all_duplicate,
    find_duplicates,
    find_top_duplicate,
    get_n_grams,
)

from configs import curation
from llm_jax.curate.repetition import (
    FastGopherRepetitionFilter,
    PageNGrams,
    _Slices,
    duplicates,
)
from llm_jax.curate.stages import filter_steps
from llm_jax.curate.words import FastEnglishSplitter
from tests.curate.conftest import paragraphs

SPLITTER = FastEnglishSplitter()


def verdicts(text: str, **settings) -> tuple[object, object]:
    """(datatrove's result, the fast filter's result) for one page."""
    doc = Document(text=text, id="x")
    return tuple(cls(language=SPLITTER, **settings).filter(doc)
                 for cls in (GopherRepetitionFilter, FastGopherRepetitionFilter))


PROSE = paragraphs(2, start=40)
LINE = " ".join(PROSE[0].split("\n"))  # three paragraphs as one long line
SENTENCE = "The quick brown fox jumps over the lazy dog near the old river bank."


def units(template: str, count: int = 200) -> str:
    return " ".join(template.format(i=i) for i in range(count))


# name -> (page, the reason datatrove gives); the reason is asserted too, so that the table
# really reaches every rule and not just "kept"
HAND_MADE = {
    "prose": (PROSE[0], True),
    "empty": ("", "empty"),
    "one word": ("word", True),
    "only punctuation": ("... !!! ??? --- ,,, ;;; ...", "top_2_gram"),
    "whitespace only": ("   \n\n  ", True),
    "duplicate paragraphs": ("\n\n".join([SENTENCE, "Another one.", SENTENCE, SENTENCE]),
                             "dup_para_frac"),
    "long duplicate paragraph": ("\n\n".join([LINE, PROSE[1], "Short.", LINE]),
                                 "dup_para_char_frac"),
    "duplicate lines": ("\n".join([SENTENCE, "x y z", SENTENCE, SENTENCE, "a b"]),
                        "dup_line_frac"),
    "long duplicate line": ("\n".join([LINE, PROSE[1], LINE]), "dup_line_char_frac"),
    "top 2-gram": (PROSE[0] + " " + "big cat " * 200, "top_2_gram"),
    "top 3-gram": (units("red big cat fillerwordnumber{i:03d} otherfillerword{i:03d}"),
                   "top_3_gram"),
    # the 2- and 3-grams of the repeated 4-gram tie: the first one seen counts, as in datatrove
    "top 4-gram": (units("a red big cat fillerwordnumber{i:03d} otherfillerwords{i:03d}"),
                   "top_4_gram"),
    "duplicated 5-grams": (LINE + " " + LINE[:len(LINE) // 2], "duplicated_5_n_grams"),
    "punctuation words": (", , , ; ; ; : : : . . . " * 5 + PROSE[1], True),
    # characters beyond the BMP and a lone surrogate (text decoded with surrogateescape)
    "emoji and surrogates": (PROSE[1] + " 🦊🦊 \udcff 𝐀𝐁 " * 60, "top_4_gram"),
}


@pytest.mark.parametrize("name", sorted(HAND_MADE))
def test_hand_made_pages_decide_as_datatrove(name):
    text, reason = HAND_MADE[name]
    slow, fast = verdicts(text)
    assert fast == slow
    assert (slow if slow is True else slow[1]) == reason


def test_late_thresholds_are_reached_too():
    # 6..10-gram reasons, which the default 5-gram threshold hides: switch the others off
    rng = random.Random(3)
    seen = set()
    for n in range(5, 11):
        words = [f"w{rng.randrange(10**6)}" for _ in range(400)]
        span = words[:n + 2]
        text = " ".join(words + span * 3)
        only_n = tuple((m, 0.0 if m == n else 1.0) for m in range(5, 11))
        slow, fast = verdicts(text, top_n_grams=(), dup_n_grams=only_n)
        assert fast == slow == (False, f"duplicated_{n}_n_grams")
        seen.add(slow[1])
    assert len(seen) == 6


def random_words(rng: random.Random, count: int, vocabulary: int) -> list[str]:
    words = [f"w{rng.randrange(vocabulary)}" for _ in range(count)]
    # words whose joins collide across boundaries ("ab"+"c" == "a"+"bc", "a b"+"c" ==
    # "a"+"b c" with spaces), and empty words
    for i in rng.sample(range(count), count // 10):
        words[i] = rng.choice(["a", "ab", "bc", "c", ".", ",", "abc", "a b", "b c", " ", ""])
    return words


def test_duplicated_n_grams_are_the_joined_strings():
    # datatrove's "".join cannot see word boundaries: "ab c d e f" repeats "a bc d e f"
    words = "ab c d e f x a bc d e f".split()
    assert find_all_duplicate(words, 5) == 6  # "abcdef"
    assert PageNGrams(words).duplicated_chars(5) == 6


def test_helpers_count_as_datatrove_on_random_words():
    rng = random.Random(0)
    for trial in range(300):
        words = random_words(rng, rng.randrange(0, 120), rng.choice([3, 8, 30, 1000]))
        for n in range(1, 12):
            grams = get_n_grams(words, n)
            assert duplicates(grams) == find_duplicates(grams)
            expected_top = find_top_duplicate(grams) if grams else None
            assert PageNGrams(words).top_chars(n) == expected_top, (trial, n)
            assert PageNGrams(words).duplicated_chars(n) == find_all_duplicate(words, n), \
                (trial, n)


def generated_page(rng: random.Random) -> str:
    """A random word stream in lines and paragraphs, with repetition injected at random."""
    words = random_words(rng, rng.randrange(20, 600), rng.choice([50, 300, 5000, 10**6]))
    for _ in range(rng.choice([0, 0, 1, 3, 8])):  # repeated spans of 2..12 words
        n = rng.randrange(2, 13)
        start = rng.randrange(len(words))
        span = words[start:start + n]
        at = rng.randrange(len(words))
        words[at:at] = span * rng.randrange(1, 4)
    lines, i = [], 0
    while i < len(words):
        step = rng.randrange(3, 25)
        lines.append(" ".join(words[i:i + step]) + rng.choice(["", ".", "!", " ?"]))
        i += step
    for _ in range(rng.choice([0, 0, 1, 2])):  # repeated lines
        lines.insert(rng.randrange(len(lines) + 1), rng.choice(lines))
    separators = [rng.choice(["\n", "\n", "\n\n", "\n\n\n"]) for _ in lines]
    return "".join(line + sep for line, sep in zip(lines, separators))


def test_generated_pages_decide_exactly_as_datatrove():
    rng = random.Random(1)
    reasons = []
    for _ in range(400):
        text = generated_page(rng)
        slow, fast = verdicts(text)
        assert fast == slow, text
        reasons.append("kept" if slow is True else slow[1])
    # the pages reach several rules, so agreement means something
    distinct = set(reasons)
    assert "kept" in distinct and len(distinct) >= 6, distinct
    for rule in ("dup_line", "top_", "duplicated_"):
        assert any(r.startswith(rule) for r in distinct), (rule, distinct)
    assert 40 < reasons.count("kept") < 360


def test_config_switches_between_the_two_classes(tmp_path):
    config = curation.curation_config()
    config.input.format = "jsonl"
    step = dict(filter_steps(config, tmp_path))["gopher_repetition"]
    assert type(step) is FastGopherRepetitionFilter
    config.gopher_repetition.fast = False
    step = dict(filter_steps(config, tmp_path))["gopher_repetition"]
    assert type(step) is GopherRepetitionFilter
    assert step.dup_n_grams[0] == (5, 0.15) and step.language == SPLITTER


def test_hash_collisions_cost_time_not_counts(monkeypatch):
    # every n-gram's hash the same: each becomes a string and is counted exactly
    monkeypatch.setattr(_Slices, "hashes", lambda self, starts, ends: starts * 0)
    rng = random.Random(2)
    for _ in range(60):
        words = random_words(rng, rng.randrange(0, 80), rng.choice([3, 30, 1000]))
        for n in (2, 3, 5, 8):
            grams = get_n_grams(words, n)
            assert PageNGrams(words).top_chars(n) == (find_top_duplicate(grams) if grams
                                                      else None)
            assert PageNGrams(words).duplicated_chars(n) == find_all_duplicate(words, n)
