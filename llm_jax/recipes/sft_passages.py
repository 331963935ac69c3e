"""SFT tasks grounded in the pretraining corpus: "continue this passage", "which book?".

A passage's split is a hash of (book, passage number)."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path

from llm_jax.data.splits import split_of

KNOWN_TITLES = {"kjv": "the King James Bible"}
SMALL_WORDS = {"and", "of", "the", "a", "an", "in", "on"}
PASSAGE_CHARS = 400
MIN_CHARS = 150  # shorter passages (chapter headings, short verses) carry too little text
CONTINUE = ("Continue this passage:\n\n{head}", "What comes next?\n\n{head}",
            "Please continue the text below.\n\n{head}")
WHICH = ("Which book is this passage from? The choices are: {choices}.\n\n{text}",
         "Here is a passage. Is it from {choices}?\n\n{text}")


def title_of(path: str | Path) -> str:
    """A display title from a file name: `pride_and_prejudice.txt` → "Pride and Prejudice"."""
    stem = Path(path).name.split(".")[0]
    if stem.lower() in KNOWN_TITLES:
        return KNOWN_TITLES[stem.lower()]
    words = stem.replace("-", "_").split("_")
    return " ".join(w if i and w in SMALL_WORDS else w.capitalize() for i, w in enumerate(words))


def load_books(paths: Sequence[str | Path]) -> dict[str, str]:
    """{title: text} for plain-text books."""
    return {title_of(p): Path(p).read_text(encoding="utf-8") for p in paths}


def passages(text: str, max_chars: int = PASSAGE_CHARS) -> list[str]:
    """Consecutive runs of non-blank lines of about `max_chars`, in order; short ones
    dropped."""
    out, current = [], []
    for line in text.splitlines():
        if not line.strip():
            continue
        current.append(line.strip())
        if sum(len(x) + 1 for x in current) >= max_chars:
            out.append("\n".join(current))
            current = []
    if current:
        out.append("\n".join(current))
    return [p for p in out if len(p) >= MIN_CHARS]


class PassageTasks:
    """Draws passage conversations from books, each passage on one side of the split."""

    def __init__(self, books: Mapping[str, str], heldout_fraction: float):
        if not books:
            raise ValueError("passage tasks need at least one book")
        self.titles = sorted(books)
        self.pools: dict[str, dict[str, list[str]]] = {"train": {}, "heldout": {}}
        for title in self.titles:
            for i, passage in enumerate(passages(books[title])):
                split = split_of(f"{title}\0{i}", heldout_fraction, salt="sft-passages")
                self.pools[split].setdefault(title, []).append(passage)

    def conversation(self, rng: random.Random, split: str) -> dict | None:
        """A continue or which-book conversation on a passage of `split` (None: no passage)."""
        pool = self.pools[split]
        if not pool:
            return None
        title = rng.choice(sorted(pool))
        passage = rng.choice(pool[title])
        if rng.random() < 0.5 or len(self.titles) < 2:
            words = passage.split(" ")
            cut = max(1, int(len(words) * rng.uniform(0.4, 0.7)))
            head, tail = " ".join(words[:cut]), " ".join(words[cut:])
            question, answer, kind = rng.choice(CONTINUE).format(head=head), tail, "continue"
        else:
            choices = rng.sample(self.titles, len(self.titles))
            listed = ", ".join(choices[:-1]) + " or " + choices[-1]
            question = rng.choice(WHICH).format(choices=listed, text=passage)
            answer, kind = f"This passage is from {title}.", "which_book"
        return {"messages": [{"role": "user", "content": question},
                             {"role": "assistant", "content": answer}],
                "kind": kind, "answer": title if kind == "which_book" else answer}
