"""A regex English word and sentence splitter for datatrove's quality filters and MinHash.

Datatrove's Gopher, C4 and FineWeb filters (and MinHash signatures) split text with
`load_word_tokenizer("en")`: spaCy's blank English pipeline plus its sentencizer. The rules
only need word and sentence boundaries, yet spaCy builds a `Doc` of lexeme-backed tokens for
every call: on the demo WARC's documentation pages (17,000 characters on average) ~35 ms of
CPU a page for the words and ~39 ms for the sentences, most of the filter stage's time.
`FastEnglishSplitter` finds the same boundaries with a few compiled regular expressions in
~2 ms (words) and ~0.4 ms (sentences); `bench/curate_steps.py --agreement` measures how often
the filters then decide as they do with spaCy.

Datatrove's own hook plugs it in: every filter's `language` argument goes to
`load_word_tokenizer`, which returns a `WordTokenizer` instance it is given as it is.

It follows spaCy's English tokenizer where the rules can tell the difference: punctuation is
split off words (one token a character, an ellipsis or a dash run one token), while numbers
("3.14", "1,000", "10:30"), dotted names ("os.path.join", "U.S.", "e.g."), URLs and e-mail
addresses stay whole, and "don't" / "it's" split into two tokens. A sentence ends at ".", "!"
or "?" (or another sentence-final character spaCy's sentencizer knows) that stands as its
own token and is followed by more text, as in spaCy's sentencizer.
"""

from __future__ import annotations

import re

import ml_collections
from datatrove.utils.word_tokenizers import WordTokenizer

# Titles spaCy's English exceptions keep together with their period (no sentence end there).
_TITLES = ("Mr", "Mrs", "Ms", "Dr", "Prof", "St", "Jr", "Sr", "vs", "etc", "Inc", "Ltd",
           "Co", "Corp", "No", "Fig", "Vol", "approx", "Jan", "Feb", "Mar", "Apr", "Jun",
           "Jul", "Aug", "Sep", "Sept", "Oct", "Nov", "Dec")

_WORD = re.compile(
    # first, the common case, decided without backtracking: a word that none of the special
    # forms below can continue (the rest only runs at ".", ":", "'", "@", "+", "-", ",x")
    r"\w++(?![.:'’@+-]|,\w)"
    r"|(?:https?://|www\.)[^\s<>\"'()\[\]]*[^\s<>\"'()\[\].,;:!?]"  # a URL, minus final punct
    r"|[\w+-]++(?:\.[\w+-]++)*+@\w[\w-]*(?:\.\w[\w-]*)+"  # an e-mail address
    rf"|(?-i:\b(?:{'|'.join(_TITLES)})\.)(?=\s)"  # a title with its period
    r"|(?:\w\.){2,}(?!\w)"  # e.g. / U.S. / i.e.
    r"|\w+?(?=n['’]t\b)|n['’]t\b"  # don't -> do n't
    r"|['’](?:s|re|ve|ll|d|m)\b"  # it's -> it 's
    # a word, number or dotted name: 3.14, 1,000, 10:30, os.path, O'Neil
    r"|\w+(?:[.,:]\w+|['’](?!(?:s|re|ve|ll|d|m|t)\b)\w+)*"
    r"|\.{2,}|…|-{2,}"  # an ellipsis or a dash run: one token
    r"|[^\w\s]",  # any other punctuation: one token a character
    re.IGNORECASE,
)
# spaCy's sentencizer's sentence-final characters that occur in Latin-script text, but "."
_FINAL = "!?։؟۔।॥။።‼‽⁇⁈⁉﹒﹖﹗！．？｡。"
# A sentence-final token: a run of final characters, or a "." that is not part of a longer
# token ("...", "3.14", "e.g.", "Mr."); then the punctuation that closes the sentence
# (quotes, brackets); a boundary only where a word follows, as in spaCy's sentencizer.
_TITLE_2 = "|".join(t for t in _TITLES if len(t) == 2)
_TITLE_3 = "|".join(t for t in _TITLES if len(t) == 3)
_SENTENCE_END = re.compile(
    rf"(?:[{re.escape(_FINAL)}]+(?!\w)"
    rf"|\.(?<!\.\.)(?<!\.\w\.)(?<!\b(?:{_TITLE_2})\.)(?<!\b(?:{_TITLE_3})\.)(?![.\w]))"
    r"[^\w\s]*(?=\W*\w)"
)


class FastEnglishSplitter(WordTokenizer):
    """English words and sentences from regular expressions (see the module docstring)."""

    def __init__(self):
        super().__init__("en")

    def word_tokenize(self, text: str) -> list[str]:
        return _WORD.findall(text)

    def sent_tokenize(self, text: str) -> list[str]:
        return [s for a, b in self.span_tokenize(text) if (s := text[a:b].strip())]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        spans, start = [], 0
        for end in _SENTENCE_END.finditer(text):
            spans.append((start, end.end()))
            start = end.end()
        spans.append((start, len(text)))
        return spans

    # one splitter is as good as another: equal and hashable by type, so that datatrove's
    # caches keyed on the filter's `language` hit across unpickled copies
    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self))


def word_splitter(config: ml_collections.ConfigDict) -> str | WordTokenizer:
    """What the quality filters and MinHash get as `language`: the fast splitter, or "en"
    (datatrove's spaCy tokenizer); plan.check_config has checked the name."""
    return FastEnglishSplitter() if config.word_splitter == "fast" else "en"

