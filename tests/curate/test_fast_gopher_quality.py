"""The fast Gopher quality filter decides exactly as datatrove's: hand-made and generated pages.

Expected values come from datatrove's own class and expressions, run on the same words.
"""

import random
import sys

import pytest
from datatrove.data import Document
from datatrove.pipeline.filters import GopherQualityFilter
from datatrove.pipeline.filters.gopher_quality_filter import PUNCTUATION_SET

from configs import curation
from llm_jax.curate.gopher_quality import (
    FastGopherQualityFilter,
    non_symbol_words,
    words_with_letters,
)
from llm_jax.curate.stages import filter_steps
from llm_jax.curate.words import FastEnglishSplitter
from tests.curate.conftest import paragraphs

SPLITTER = FastEnglishSplitter()
SETTINGS = curation.curation_config().gopher_quality  # the pipeline's thresholds


def verdicts(text: str, **overrides) -> tuple[object, object]:
    """(datatrove's result, the fast filter's result) for one page."""
    settings = {k: v for k, v in SETTINGS.items() if k not in ("enabled", "fast")}
    settings.update(overrides)
    doc = Document(text=text, id="x")
    return tuple(cls(language=SPLITTER, **settings).filter(doc)
                 for cls in (GopherQualityFilter, FastGopherQualityFilter))


PROSE = paragraphs(1, start=20)[0]
HAND_MADE = {
    "prose": (PROSE, True, {}),
    "short": ("Too short a page, with only a few words in it.", "gopher_short_doc", {}),
    "long": (PROSE, "gopher_long_doc", {"max_doc_words": 100}),
    "short words": (" ".join(["a b c"] * 60) + " the and", "gopher_below_avg_threshold", {}),
    "long words": (" ".join(["incomprehensibilities"] * 60) + " the and",
                   "gopher_above_avg_threshold", {}),
    "hashes": (PROSE + " #" * 200, "gopher_too_many_hashes", {}),
    "ellipses": (PROSE + " …" * 100 + " ..." * 100, "gopher_too_many_ellipsis", {}),
    "bullets": ("\n".join(f"- item {i} of the list and more words" for i in range(20)),
                "gopher_too_many_bullets", {}),
    "end ellipses": ("\n".join(f"Line {i} of the page trails off with the words..."
                               for i in range(20)), "gopher_too_many_end_ellipsis",
                     {"max_symbol_word_ratio": None}),
    "numbers": (PROSE + " " + " ".join(str(i) for i in range(3000)),
                "gopher_below_alpha_threshold", {}),
    "no stop words": (" ".join(f"apple{i} banana cherry" for i in range(40)),
                      "gopher_enough_stop_words", {}),
    # near the 0.6 share of words with a letter: Ⅻ, ², ½ and ٣ are word characters, not letters
    "unicode letters": (" ".join(["ǅungla Ⅻ ² ½ 𝐀lphabetic 漢字 ñandú ٣ ﬁne … conversation"]
                                 * 30) + " the and of", "gopher_below_alpha_threshold", {}),
}


@pytest.mark.parametrize("name", sorted(HAND_MADE))
def test_hand_made_pages_decide_as_datatrove(name):
    text, reason, overrides = HAND_MADE[name]
    slow, fast = verdicts(text, **overrides)
    assert fast == slow
    assert (slow if slow is True else slow[1]) == reason


# characters from every corner of Unicode that the two questions tell apart
ODD = "ǅⅫ²½𝐀漢ñ٣ﬁ_‿⁀・°§¶€$%&'\"«»—–-…·•‐‑‒―" + "".join(sorted(PUNCTUATION_SET))


def random_word(rng: random.Random) -> str:
    pool = rng.choice(["abcxyz", "0123456789", ODD, ODD + "ab1", None])
    if pool is None:  # any code point, surrogates aside
        return "".join(chr(c) for c in (rng.randrange(sys.maxunicode + 1)
                                        for _ in range(rng.randrange(1, 4)))
                       if not 0xD800 <= c < 0xE000)
    return "".join(rng.choice(pool) for _ in range(rng.randrange(0, 6)))


def test_helpers_answer_as_datatrove_on_random_words():
    rng = random.Random(0)
    words = [random_word(rng) for _ in range(20_000)]
    assert non_symbol_words(words) == [
        w for w in words if any(ch not in PUNCTUATION_SET for ch in w)]
    assert words_with_letters(words) == sum([any(c.isalpha() for c in w) for w in words])
    # every letter Python knows, one a word (the pattern's ranges have no gaps or strays)
    letters = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isalpha()]
    assert words_with_letters(letters) == len(letters)
    non_letters = [chr(c) for c in range(0, 0x30000, 7) if not chr(c).isalpha()]
    assert words_with_letters(non_letters) == 0


def test_generated_pages_decide_exactly_as_datatrove():
    rng = random.Random(1)
    vocabulary = ("the of and to in a is that it was for on with as his he be at by I this "
                  "had not are but from or have an they which one you were her all she "
                  "there would their we him been has when who will more no if out so said "
                  "remarkable afternoon conversation everything understand together "
                  "neighbourhood acquaintance circumstances "
                  "### ... … - • ( ) , . ; : 42 3.14 2026 x_y ² Ⅻ ñandú 漢字 𝐀").split()
    reasons = []
    for _ in range(300):
        lines = []
        for _ in range(rng.randrange(1, 25)):
            words = rng.choices(vocabulary, k=rng.randrange(1, 20))
            lines.append(rng.choice(["", "", "- ", "• "]) + " ".join(words))
        slow, fast = verdicts("\n".join(lines))
        assert fast == slow
        reasons.append("kept" if slow is True else slow[1])
    assert {"kept", "gopher_short_doc", "gopher_too_many_hashes"} <= set(reasons)


def test_config_switches_between_the_two_classes(tmp_path):
    config = curation.curation_config()
    config.input.format = "jsonl"
    assert type(dict(filter_steps(config, tmp_path))["gopher_quality"]) is \
        FastGopherQualityFilter
    config.gopher_quality.fast = False
    step = dict(filter_steps(config, tmp_path))["gopher_quality"]
    assert type(step) is GopherQualityFilter and step.min_stop_words == 2
