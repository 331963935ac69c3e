"""The search tool: a BM25 index over a corpus's passages, built once and memory-mapped.

    build_search_index(["books/*.txt"], "index/")            # `llm-jax index books --out index`
    index = SearchIndex.load("index/")                        # arrays and passages mmapped
    index.search("Emma Woodhouse handsome", k=2)              # [(passage, score), ...]
    index("Emma Woodhouse handsome")                          # the tool: top passages as text

A corpus is anything the records layer reads (text, JSONL, Parquet; see `data/sources.py`).
Each document is cut into passages: paragraphs (blank-line separated), with long paragraphs
cut at line ends, so a passage is at most `passage_chars` characters (a line longer than
that stays whole). Words are lowercased `\\w+` runs minus English stopwords, for passages
and queries alike; a query word the corpus never uses counts for nothing. `bm25s` (the
`search` extra) scores with Lucene's BM25: k1 = 1.5, b = 0.75, idf = ln(1 + (N - df + 0.5) /
(df + 0.5)), and no (k1 + 1) factor (the ranking is the same). It saves the index as numpy
arrays plus a JSONL of passages, which `load` maps rather than reads.
"""

from __future__ import annotations

import functools
import json
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
    return bm25s


@functools.cache
def _stopwords() -> frozenset[str]:
    _bm25s()
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


def words(text: str) -> list[str]:
    """The terms BM25 sees: lowercased word runs without English stopwords."""
    stop = _stopwords()
    return [w for w in _WORD.findall(text.lower()) if w not in stop]


def passages(documents: Iterable[str], passage_chars: int = 500) -> Iterator[str]:
    """Paragraphs of `documents`, long ones cut at line ends into pieces of at most
    `passage_chars` characters; whitespace runs become one space."""
    for doc in documents:
        for paragraph in re.split(r"\n\s*\n", doc):
            piece: list[str] = []
            size = 0
            for line in paragraph.splitlines():
                line = " ".join(line.split())
                if not line:
                    continue
                if piece and size + 1 + len(line) > passage_chars:
                    yield " ".join(piece)
                    piece, size = [], 0
                piece.append(line)
                size += len(line) + (size > 0)
            if piece:
                yield " ".join(piece)


def build_search_index(patterns: Sequence[str], out: str | Path, *, text_field: str = "text",
                       passage_chars: int = 500) -> int:
    """Index the passages of every document the patterns name into `out`; returns how many.
    A corpus with no words to index is a DataError naming it."""
    from llm_jax.data.sources import read_documents

    bm25s = _bm25s()
    texts = [p for p in passages(read_documents(patterns, text_field=text_field), passage_chars)
             if words(p)]
    if not texts:
        raise DataError(f"{', '.join(patterns)}: no words to index")
    retriever = bm25s.BM25()
    retriever.index([words(t) for t in texts], show_progress=False)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    retriever.save(str(out), corpus=[{"id": i, "text": t} for i, t in enumerate(texts)],
                   show_progress=False, raise_on_serialization_error=True)
    (out / SETTINGS_FILE).write_text(json.dumps(
        {"corpus": [str(p) for p in patterns], "text_field": text_field,
         "passage_chars": passage_chars, "passages": len(texts)}, indent=1) + "\n")
    return len(texts)


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
            retriever = _bm25s().BM25.load(str(path), mmap=True, load_corpus=True,
                                           show_progress=False)
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

    def search(self, query: str, k: int | None = None) -> list[tuple[str, float]]:
        """The best `k` passages (with their scores) that share a word with `query`."""
        scores = self.scores(query)
        k = min(k or self.k, len(scores))
        best = np.argsort(-scores, kind="stable")[:k]
        return [(self.retriever.corpus[int(i)]["text"], float(scores[i]))
                for i in best if scores[i] > 0]

    def __call__(self, query: str) -> str:
        """The tool's output: the top passages, each cut to `max_chars`, one per line."""
        hits = self.search(query)
        return "\n".join(text[:self.max_chars] for text, _ in hits) if hits else NO_RESULTS
