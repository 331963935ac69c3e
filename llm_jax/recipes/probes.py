"""Knowledge probes: factual questions with known answers, made by templates from a corpus.

    questions = probe_questions({"Emma": emma_text, "King James Bible": kjv_text})
    questions[0]   # ProbeQuestion(question='In Emma, who says "..."?', answer='Mr. Knightley', ...)

Three templates, each reading a pattern the text itself marks, so the reference answer is
the text's own:
- `speaker`: a quoted line and the name after it (`"...," said Mr. Knightley`): who says it?
  (`search_practice` also reads `replied`, `cried`, ... for more search conversations.)
- `book`: a titled character (`Mr. Tilney`, `Miss Bates`) named in one book of the corpus
  only, at least `min_mentions` times: which book are they in?
- `verse`: a chapter heading (`Genesis 1`) and a numbered verse under it (`  3 And God...`):
  what are the first words of Genesis 1:3?

Beside them, `arithmetic` questions come from the generator whose worked problems are mixed
into the pretraining text (`data.generated`; `recipes/math`): a kind the tiny models do
partly know, so that refusal training has known questions to keep answering.

Questions are deterministic given the texts and the seed; each carries a `split` (train or
heldout) drawn from a hash of its text, so the same question always lands on the same side.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import random
import re
from collections.abc import Mapping
from pathlib import Path

KINDS = ("speaker", "book", "verse")
TITLES = ("Mr.", "Mrs.", "Miss", "Lady", "Sir", "Colonel", "Captain", "Dr.")
_TITLE = "|".join(re.escape(t) for t in TITLES)
# More ways the text names a speaker: only search practice uses them (`search_practice`),
# so the probed questions (and their held-out split) stay those of `said`.
SPEECH_VERBS = ("said", "replied", "cried", "added", "continued", "answered", "returned")
_CHARACTER = re.compile(r"\b(?:" + _TITLE + r")\s+[A-Z][a-z]+")
_CHAPTER = re.compile(r"^(\S.*?) (\d+)\s*$")
_VERSE = re.compile(r"^\s+(\d+) (.*)$")
VERSE_WORDS = 5  # words of a verse a `verse` answer holds
SEARCH_QUERIES = ("query", "question")  # what a search conversation searches for


@dataclasses.dataclass(frozen=True)
class ProbeQuestion:
    question: str
    answer: str
    kind: str  # one of KINDS
    book: str  # the book the answer comes from
    split: str = "train"  # train | heldout
    query: str = ""  # what to search for: the quoted line, the character, the reference


@dataclasses.dataclass(frozen=True)
class ProbeSettings:
    """How a model is probed and what its scores make of a question (config: `probe.*`)."""

    samples: int = 8  # answers sampled per question (K)
    temperature: float = 1.0
    top_k: int = 0  # 0 = off
    top_p: float = 1.0
    max_new_tokens: int = 32
    known_at: float = 0.75  # correct fraction at or above which a question is known
    unknown_at: float = 0.25  # at or below which it is unknown (refusal data)
    refusal_ratio: float = 0.0  # at most this many refusals per kept answer (0 = all)
    search_query: str = "query"  # search data asks for: query (`search: QUERY`) | question
    seed: int = 0


def book_title(path: str | Path) -> str:
    """A corpus file's book title: `northanger_abbey.txt` -> "Northanger Abbey"; the Bible
    file (`kjv.txt`) -> "King James Bible"."""
    stem = Path(path).name.split(".")[0]
    return "King James Bible" if stem.lower() == "kjv" else stem.replace("_", " ").title()


def _speaker_pattern(verbs: tuple[str, ...]) -> re.Pattern:
    return re.compile(r'"([^"]{20,90}?)[,!?]"\s+(?:' + "|".join(verbs) + r')\s+((?:(?:'
                      + _TITLE + r')\s+)?[A-Z][a-z]+)')


def speaker_questions(text: str, book: str, verbs: tuple[str, ...] = ("said",)
                      ) -> list[ProbeQuestion]:
    """Who says a quoted line (`"...," said NAME`, or another of `verbs`): one question per
    distinct line."""
    flat = " ".join(text.split())
    seen, out = set(), []
    for quote, name in _speaker_pattern(verbs).findall(flat):
        quote = quote.strip()
        if quote in seen or name in ("He", "She", "It", "I"):
            continue
        seen.add(quote)
        out.append(ProbeQuestion(f'In {book}, who says "{quote}"?', name, "speaker", book,
                                 query=quote))
    return out


def book_questions(texts: Mapping[str, str], min_mentions: int = 3) -> list[ProbeQuestion]:
    """Which book a titled character appears in (only characters of exactly one book)."""
    counts = {book: collections.Counter(" ".join(m.split()) for m in _CHARACTER.findall(text))
              for book, text in texts.items()}
    out = []
    for book, names in counts.items():
        for name, n in sorted(names.items()):
            elsewhere = any(name in other for b, other in counts.items() if b != book)
            if n >= min_mentions and not elsewhere:
                out.append(ProbeQuestion(f"In which book does {name} appear?", book, "book",
                                         book, query=name))
    return out


def verse_questions(text: str, book: str) -> list[ProbeQuestion]:
    """The first words of a numbered verse under a chapter heading (`Genesis 1`)."""
    verses: dict[str, list[str]] = {}
    chapter, current = None, None
    for line in text.splitlines():
        if (heading := _CHAPTER.match(line)) and not line.startswith(" "):
            chapter, current = f"{heading.group(1)} {heading.group(2)}", None
        elif chapter and (verse := _VERSE.match(line)):
            current = f"{chapter}:{verse.group(1)}"
            verses[current] = [verse.group(2)]
        elif current and line.strip():
            verses[current].append(line.strip())
    out = []
    for reference, lines in verses.items():
        words = " ".join(lines).split()[:VERSE_WORDS]
        if len(words) == VERSE_WORDS:
            answer = " ".join(words).rstrip(",;:.")
            out.append(ProbeQuestion(f"What are the first words of {reference}?", answer,
                                     "verse", book, query=reference))
    return out


def arithmetic_questions(n: int, seed: int = 0, levels=(1,)) -> list[ProbeQuestion]:
    """`n` generated arithmetic problems (the answer: their value)."""
    from llm_jax.recipes.math.sources import stratified_heldout

    problems = stratified_heldout(levels, n, seed=seed, heldout_fraction=0.5) if n else []
    return [ProbeQuestion(p.prompt, p.answer, "arithmetic", "generated arithmetic")
            for p in problems]


def _split(question: str, heldout_fraction: float) -> str:
    digest = int(hashlib.sha256(question.encode()).hexdigest()[:8], 16)
    return "heldout" if digest / 0xFFFFFFFF < heldout_fraction else "train"


def probe_questions(texts: Mapping[str, str], *, per_kind: int = 100,
                    heldout_fraction: float = 0.25, seed: int = 0, min_mentions: int = 3,
                    arithmetic: int = 0) -> list[ProbeQuestion]:
    """Up to `per_kind` questions of each kind over `texts` (book title -> text), drawn with
    `seed`, and `arithmetic` arithmetic questions, each with its split."""
    pools = {"speaker": [q for b, t in texts.items() for q in speaker_questions(t, b)],
             "book": book_questions(texts, min_mentions),
             "verse": [q for b, t in texts.items() for q in verse_questions(t, b)]}
    rng = random.Random(seed)
    out = []
    for kind in KINDS:
        pool = pools[kind]
        for q in rng.sample(pool, min(per_kind, len(pool))):
            out.append(dataclasses.replace(q, split=_split(q.question, heldout_fraction)))
    return out + [dataclasses.replace(q, split=_split(q.question, heldout_fraction))
                  for q in arithmetic_questions(arithmetic, seed)]


def search_practice(texts: Mapping[str, str], *, limit: int, heldout_fraction: float = 0.25,
                    exclude=(), seed: int = 0) -> list[ProbeQuestion]:
    """Up to `limit` more train-split questions whose answer a search finds: who says a line
    (any of `SPEECH_VERBS`) and which book a character is in (named twice or more), minus the
    questions in `exclude`. They are not probed: a search is a right way to answer whether or
    not the model knew, so they only add search conversations. Held-out questions are never
    among them (the split is a hash of the question's text)."""
    skip = set(exclude)
    pool = [q for b, t in texts.items() for q in speaker_questions(t, b, SPEECH_VERBS)]
    pool += book_questions(texts, min_mentions=2)
    pool = [q for q in pool
            if q.question not in skip and _split(q.question, heldout_fraction) == "train"]
    return random.Random(seed).sample(pool, min(limit, len(pool)))
