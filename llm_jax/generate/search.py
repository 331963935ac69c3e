"""The search tool: a BM25 index over a corpus's passages, built once and memory-mapped.

    build_search_index(["books/*.txt"], "index/")            # `llm-jax index books --out index`
    index = SearchIndex.load("index/")                        # arrays and passages mmapped
    index.search("Emma Woodhouse handsome", k=2)              # [(passage, score), ...]
    index("Emma Woodhouse handsome")                          # the tool: top passages as text

A corpus is anything the records layer reads (text, JSONL, Parquet; see `data/sources.py`).
Each document is cut into passages: paragraphs (blank-line separated), with long paragraphs
cut at line ends, so a passage is at most `passage_chars` characters (a line longer than
that stays whole); each keeps its file's title and the heading it sits under (a one-line
paragraph such as "Luke 22"), which the tool's output names. Words are
lowercased `\\w+` runs minus English stopwords, for passages and queries alike; a query word
the corpus never uses counts for nothing. `bm25s` (the
`search` extra) scores with Lucene's BM25: k1 = 1.5, b = 0.75, idf = ln(1 + (N - df + 0.5) /
(df + 0.5)), and no (k1 + 1) factor (the ranking is the same). It saves the index as numpy
arrays plus a JSONL of passages, which `load` maps rather than reads.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from llm_jax.errors import DataError

PASSAGES_FILE = "corpus.jsonl"  # bm25s's name for the saved passages
SETTINGS_FILE = "search.json"  # how the passages were cut (ours, beside bm25s's files)
INDEX_FILES = ("params.index.json", "vocab.index.json", "data.csc.index.npy",
               "indices.csc.index.npy", "indptr.csc.index.npy", PASSAGES_FILE)
NO_RESULTS = "no results"
_WORD = re.compile(r"\w+")


def _bm25s():
    try:
        import bm25s
    except ImportError:
        raise DataError("the search tool needs `bm25s` (pip install 'llm-jax[search]')") from None
    logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets DEBUG on import
    return bm25s


@functools.cache
def _stopwords() -> frozenset[str]:
    _bm25s()
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


_REFERENCE = re.compile(r"\b\d+:\d+\b")
_NUMBER = re.compile(r"\b\d+\b")


def words(text: str) -> list[str]:
    """The terms BM25 sees: lowercased word runs without English stopwords, and references
    such as `22:58` whole as well as in parts."""
    stop = _stopwords()
    return ([w for w in _WORD.findall(text.lower()) if w not in stop]
            + _REFERENCE.findall(text))


# A heading: a one-line paragraph of words and numbers only, in capitals or ending with a
# number ("Luke 22", "CHAPTER IV"; not "by" under a title, nor a one-line verse "1 Now the").
_HEADING = re.compile(r"[\w ]{1,40}")


def _is_heading(line: str) -> bool:
    return bool(_HEADING.fullmatch(line)) and (line.isupper() or line.split()[-1].isdigit())


def headed_passages(documents: Iterable[str], passage_chars: int = 500, *,
                    one_text: bool = False) -> Iterator[tuple[str, str]]:
    """(heading, passage) pairs: paragraphs of `documents`, long ones cut at line ends into
    pieces of at most `passage_chars` characters, whitespace runs made one space. A heading
    paragraph is no passage of its own: it goes with every passage under it, so that "Luke
    22:58" finds verse 58, which sits in a passage far from its chapter's heading.
    `one_text`: the documents are consecutive pieces of one text (a text file read in
    pieces), so a heading carries over into the next."""
    heading = ""
    for doc in documents:
        if not one_text:
            heading = ""
        paragraphs = re.split(r"\n\s*\n", doc.strip())
        for n, paragraph in enumerate(paragraphs, 1):
            lines = [" ".join(line.split()) for line in paragraph.splitlines()]
            lines = [line for line in lines if line]
            # A record's last paragraph heads nothing (a one-line record is a passage), but
            # a piece of one text may end with the heading of the next piece.
            last = n == len(paragraphs) and not one_text
            if not last and len(lines) == 1 and _is_heading(lines[0]):
                heading = lines[0]
                continue
            piece: list[str] = []
            size = 0
            for line in lines:
                if piece and size + 1 + len(line) > passage_chars:
                    yield heading, " ".join(piece)
                    piece, size = [], 0
                piece.append(line)
                size += len(line) + (size > 0)
            if piece:
                yield heading, " ".join(piece)


def source_title(path: str | Path) -> str:
    """The name a passage's file goes by in the tool's output: `northanger_abbey.txt` ->
    "Northanger Abbey"."""
    return Path(path).name.split(".")[0].replace("_", " ").title()


# A heading's words count this many times, as search engines weight a title field above
# the body: "Hebrews 10:19" should find the passages under "Hebrews 10" before a passage
# that merely says "words" or "first".
HEADING_WEIGHT = 3


def indexed_words(entry: dict) -> list[str]:
    """The terms a passage is found by: its file's title (a question naming the book finds
    the book's passages), its heading (weighted), its own words, and under a numbered
    heading, `N:M` for each number M in it (verse 58 under "Luke 22" is found as `22:58`,
    as numbered clauses under a numbered section are cited)."""
    heading = entry["heading"].split()
    section = heading[-1] if heading and heading[-1].isdigit() else None
    references = ([f"{section}:{m}" for m in _NUMBER.findall(entry["text"])]
                  if section else [])
    return (words(entry["source"]) + words(entry["heading"]) * HEADING_WEIGHT
            + words(entry["text"]) + references)


def build_search_index(patterns: Sequence[str], out: str | Path, *, text_field: str = "text",
                       passage_chars: int = 500) -> int:
    """Index the passages of every document the patterns name into `out`; returns how many.
    Each passage keeps the title of its file (`source_title`) and its heading, whose words
    it is found by too (`indexed_words`). A corpus with no words to index is a DataError
    naming it."""
    from llm_jax.data.records import TEXT_SUFFIXES, expand_paths, read_records
    from llm_jax.data.records import text_field as text_validator

    bm25s = _bm25s()
    entries = []
    for path in expand_paths(list(patterns)):
        documents = read_records([str(path)], validate=text_validator(text_field),
                                 columns=(text_field,))
        one_text = path.suffix in TEXT_SUFFIXES
        for heading, text in headed_passages(documents, passage_chars, one_text=one_text):
            if words(text):
                entries.append({"id": len(entries), "text": text, "source": source_title(path),
                                "heading": heading})
    if not entries:
        raise DataError(f"{', '.join(patterns)}: no words to index")
    retriever = bm25s.BM25()
    retriever.index([indexed_words(e) for e in entries], show_progress=False)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    retriever.save(str(out), corpus=entries, show_progress=False,
                   raise_on_serialization_error=True)
    (out / SETTINGS_FILE).write_text(json.dumps(
        {"corpus": [str(p) for p in patterns], "text_field": text_field,
         "passage_chars": passage_chars, "passages": len(entries)}, indent=1) + "\n")
    return len(entries)


def window(text: str, query: str, chars: int) -> str:
    """The `chars`-long stretch of `text` holding the most query words, starting at the first
    of them (what follows a match is what a reader of the output needs, e.g. who said it).
    A number counts twice: in a query it is a reference (a verse, a section, a year), and
    where it stands matters more than where a common word does."""
    if len(text) <= chars:
        return text
    wanted = set(words(query))
    starts = [m.start() for m in re.finditer(r"\S+", text)]
    best = max(starts, key=lambda s: (sum(1 + w.isdigit() for w in words(text[s:s + chars])
                                          if w in wanted),
                                      bool(set(words(text[s:].split(" ", 1)[0])) & wanted),
                                      -s))
    return text[best:best + chars]


class SearchIndex:
    """A saved index, memory-mapped; calling it is the search tool."""

    def __init__(self, retriever, path: Path, k: int = 1, max_chars: int = 300):
        self.retriever, self.path, self.k, self.max_chars = retriever, path, k, max_chars

    @classmethod
    def load(cls, path: str | Path, *, k: int = 1, max_chars: int = 300) -> SearchIndex:
        """The index saved in `path`; a missing or damaged one is a DataError naming it."""
        path = Path(path)
        if not path.is_dir():
            raise DataError(f"{path}: no search index here (build one with `llm-jax index "
                            f"CORPUS --out {path}`)")
        missing = [n for n in INDEX_FILES if not (path / n).is_file()]
        if missing:
            raise DataError(f"{path}: not a search index (missing {', '.join(missing)})")
        try:
            # verbosity=0: the mapped passages log nothing (their logging at interpreter
            # exit fails noisily)
            retriever = _bm25s().BM25.load(str(path), mmap=True, load_corpus=True,
                                           show_progress=False, verbosity=0)
        except (ValueError, OSError, KeyError, TypeError) as e:
            raise DataError(f"{path}: unreadable search index ({type(e).__name__}: "
                            f"{' '.join(str(e).split())[:200]})") from None
        return cls(retriever, path, k, max_chars)

    def __len__(self) -> int:
        return len(self.retriever.corpus)

    def scores(self, query: str):
        """BM25 score of every passage for `query` (float32 [passages])."""
        known = [w for w in words(query) if w in self.retriever.vocab_dict]
        if not known:
            return np.zeros(len(self), np.float32)
        return self.retriever.get_scores(known)

    def _top(self, query: str, k: int) -> list[tuple[int, float]]:
        scores = self.scores(query)
        best = np.argsort(-scores, kind="stable")[:min(k, len(scores))]
        return [(int(i), float(scores[i])) for i in best if scores[i] > 0]

    def search(self, query: str, k: int | None = None) -> list[tuple[str, float]]:
        """The best `k` passages (with their scores) that share a word with `query`."""
        return [(self.retriever.corpus[i]["text"], score) for i, score in
                self._top(query, k or self.k)]

    def __call__(self, query: str) -> str:
        """The tool's output: the top passages, one a line, each as `SOURCE, HEADING: TEXT`
        cut to `max_chars` around the query's words."""
        lines = []
        for i, _ in self._top(query, self.k):
            entry = self.retriever.corpus[i]
            named = ", ".join(x for x in (entry.get("source"), entry.get("heading")) if x)
            head = f"{named}: " if named else ""
            lines.append(head + window(entry["text"], query, max(self.max_chars - len(head), 1)))
        return "\n".join(lines) if lines else NO_RESULTS
