"""The regex English splitter: words and sentences on a hand table, and every quality filter
deciding the same hand-made documents with it as with datatrove's spaCy splitter."""

import pickle

import pytest
from datatrove.data import Document
from datatrove.utils.text import split_into_sentences, split_into_words

from llm_jax.curate.plan import check_config
from llm_jax.curate.stages import filter_steps
from llm_jax.curate.words import FastEnglishSplitter, word_splitter
from llm_jax.errors import ConfigError
from tests.curate.conftest import config_for, paragraphs

# (text, words): spaCy's blank English tokenizer gives the same words on every row.
WORDS = [
    ("Hello, world! It's well-known (e.g. U.S. data)... I don't know.",
     ["Hello", ",", "world", "!", "It", "'s", "well", "-", "known", "(", "e.g.", "U.S.", "data",
      ")", "...", "I", "do", "n't", "know", "."]),
    ("See https://docs.python.org/3/x.html and a@b.com, 3.14 and 1,000 -- ok?",
     ["See", "https://docs.python.org/3/x.html", "and", "a@b.com", ",", "3.14", "and", "1,000",
      "--", "ok", "?"]),
    ('Mr. Smith said "hi." Then he left!',
     ["Mr.", "Smith", "said", '"', "hi", ".", '"', "Then", "he", "left", "!"]),
    ("Version 3.12.1: foo_bar(); os.path.join... 'single' [1] {x}",
     ["Version", "3.12.1", ":", "foo_bar", "(", ")", ";", "os.path.join", "...", "'", "single",
      "'", "[", "1", "]", "{", "x", "}"]),
    ("He can't go. O'Neil's book, 10:30am; $5.00 50%",
     ["He", "ca", "n't", "go", ".", "O'Neil", "'s", "book", ",", "10:30am", ";", "$", "5.00",
      "50", "%"]),
]
# (text, sentences): spaCy's sentencizer gives the same sentences on every row.
SENTENCES = [
    ("Mr. Smith went to Washington. He said \"hi.\" Then left!  Next",
     ["Mr. Smith went to Washington.", ' He said "hi."', " Then left!", "  Next"]),
    ("Hello, world! It's (e.g. U.S. data)... I don't know.",
     ["Hello, world!", " It's (e.g. U.S. data)... I don't know."]),
    ("Wait... what?! Yes. ok", ["Wait... what?!", " Yes.", " ok"]),
    ("Pi is 3.14 and v2.0 is out", ["Pi is 3.14 and v2.0 is out"]),
    ("1. Introduction. 2. Setup", ["1.", " Introduction.", " 2.", " Setup"]),
]


@pytest.mark.parametrize(("text", "words"), WORDS)
def test_words_match_the_hand_table_and_spacy(text, words):
    assert split_into_words(text, FastEnglishSplitter()) == words
    assert split_into_words(text, "en") == words


@pytest.mark.parametrize(("text", "sentences"), SENTENCES)
def test_sentences_match_the_hand_table_and_spacy(text, sentences):
    assert split_into_sentences(text, FastEnglishSplitter()) == sentences
    assert split_into_sentences(text, "en") == sentences


def test_the_splitter_survives_the_executor_s_pickling():
    splitter = pickle.loads(pickle.dumps(FastEnglishSplitter()))
    assert splitter == FastEnglishSplitter() and hash(splitter) == hash(FastEnglishSplitter())
    assert splitter.word_tokenize("A cat, a dog.") == ["A", "cat", ",", "a", "dog", "."]


def test_config_chooses_the_splitter(tmp_path):
    config = config_for(tmp_path)
    assert isinstance(word_splitter(config), FastEnglishSplitter)  # the default
    steps = dict(filter_steps(config, tmp_path / "removed"))
    for label in ("gopher_repetition", "gopher_quality", "c4", "fineweb"):
        assert isinstance(steps[label].language, FastEnglishSplitter), label
    config.word_splitter = "spacy"
    assert word_splitter(config) == "en"
    config.word_splitter = "nltk"
    with pytest.raises(ConfigError, match="word_splitter='nltk': one of fast, spacy"):
        check_config(config)


def _documents() -> list[tuple[str, str, str]]:
    """(filter, document, its verdict): each one turns on how words or sentences are split."""
    good = paragraphs(1, start=10)[0]
    # distinct words, but one word pair is 40% of the characters
    bigram = " ".join(f"item{i} the cat" for i in range(60)) + "."
    no_stop_words = " ".join(f"Apples{i} oranges pears plums cherries." for i in range(15))
    digits = " ".join(f"{1000 + i} {2000 + i} {3000 + i} code{i}." for i in range(40))
    # C4 counts sentences line by line: abbreviations, titles and numbers end none
    four = ("Mr. Smith met Dr. Jones at 3.14 in the afternoon, e.g. before the tea.\n"
            "The U.S. office opened at 10:30 on the day it was planned to open.\n"
            "They agreed on the plan (i.e. the old one) and wrote it down... in ink.\n"
            "Nobody else was told about the meeting or the notebook afterwards.")
    # three words a line: more newlines than FineWeb's 0.3 a word
    listing = "\n".join(f"Extraordinarily{i} incomprehensibilities." for i in range(20))
    prose_lines = "\n".join(f"Extraordinarily{i} incomprehensible things happened there."
                            for i in range(20))
    return [
        ("gopher_repetition", good, "kept"),
        ("gopher_repetition", bigram, "top_2_gram"),
        ("gopher_quality", good, "kept"),
        ("gopher_quality", "A short note of ten words, not a page at all.", "gopher_short_doc"),
        ("gopher_quality", no_stop_words, "gopher_enough_stop_words"),
        ("gopher_quality", digits, "gopher_below_alpha_threshold"),
        ("c4", good, "kept"),
        ("c4", four, "too_few_sentences"),
        ("c4", four + " It was late. They left.", "kept"),
        ("fineweb", good, "kept"),
        ("fineweb", listing, "list_ratio"),
        ("fineweb", prose_lines, "kept"),
    ]


@pytest.mark.parametrize("splitter", ["fast", "spacy"])
def test_each_quality_filter_decides_hand_made_documents_alike(tmp_path, splitter):
    config = config_for(tmp_path)
    config.word_splitter = splitter
    steps = dict(filter_steps(config, tmp_path / "removed"))
    verdicts = []
    for label, text, _ in _documents():
        result = steps[label].filter(Document(text=text, id="x"))
        verdicts.append((label, "kept" if result is True else result[1]))
    assert verdicts == [(label, expected) for label, _, expected in _documents()]
