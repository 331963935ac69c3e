"""Each configured filter keeps good hand-made documents and drops bad ones for its reason."""

import pytest
from datatrove.data import Document

from llm_jax.curate.stages import filter_steps
from tests.curate.conftest import GERMAN, config_for, paragraphs

FRENCH = ("Le village se trouve au bord d'une large rivière, et en été les habitants restent "
          "dans les jardins jusque tard dans la nuit. Le matin, les pêcheurs partent sur l'eau "
          "pendant que les enfants vont à l'école et que les boutiques ouvrent lentement.")


@pytest.fixture(scope="module")
def steps(tmp_path_factory):
    config = config_for(tmp_path_factory.mktemp("in"))
    config.input.format = "warc"  # so the extractor is built too
    return dict(filter_steps(config, tmp_path_factory.mktemp("removed")))


def verdict(step, text: str, url: str = "https://books.example/page") -> tuple[bool, str]:
    result = step.filter(Document(text=text, id="x", metadata={"url": url}))
    return (result, "") if isinstance(result, bool) else result


@pytest.fixture(scope="module")
def good() -> str:
    return paragraphs(1, start=10)[0]


def test_every_filter_keeps_good_prose(steps, good):
    for label in ("url_filter", "language", "gopher_repetition", "gopher_quality", "c4",
                  "fineweb"):
        assert verdict(steps[label], good) == (True, ""), label


def test_url_filter(steps, good):
    assert verdict(steps["url_filter"], good, "https://spamsite.com/x") == (False, "domain")
    assert verdict(steps["url_filter"], good, "https://a.spamsite.com/") == (False, "domain")
    assert verdict(steps["url_filter"], good, "https://spamsite.com.example.org/")[0]
    assert steps["url_filter"].filter(Document(text=good, id="x")) is True  # no URL: kept


def test_language_filter_drops_foreign_pages(steps, good):
    assert verdict(steps["language"], GERMAN) == (False, "language_de")
    assert verdict(steps["language"], FRENCH) == (False, "language_fr")
    doc = Document(text=good, id="x")
    assert steps["language"].filter(doc) is True
    assert doc.metadata["language"] == "en" and doc.metadata["language_score"] > 0.9


def test_language_filter_classifies_the_first_max_chars(good):
    from llm_jax.curate.steps import LangIdFilter

    english = good.split("\n")[0]
    english_then_german = english + "\n" + "\n".join([GERMAN] * 10)
    first = LangIdFilter(max_chars=len(english))
    assert first.filter(Document(text=english_then_german, id="x")) is True
    whole = LangIdFilter(max_chars=0)
    assert whole.filter(Document(text=english_then_german, id="x")) == (False, "language_de")


def test_gopher_repetition(steps):
    repeated = "\n".join(["The same sentence is written on every line of this page."] * 20)
    assert verdict(steps["gopher_repetition"], repeated) == (False, "dup_line_frac")


def test_gopher_quality(steps, good):
    assert verdict(steps["gopher_quality"], "A short note of ten words, not a page.") == (
        False, "gopher_short_doc")
    symbols = good + " " + " ".join(["#"] * 200)
    assert verdict(steps["gopher_quality"], symbols) == (False, "gopher_too_many_hashes")


def test_c4(steps, good):
    assert verdict(steps["c4"], good + "\nLorem ipsum dolor sit amet, consectetur.") == (
        False, "lorem_ipsum")
    assert verdict(steps["c4"], good + "\nif (x) { return y; }")[0] is False
    doc = Document(text=good + "\nPlease enable JavaScript in your browser.", id="x")
    assert steps["c4"].filter(doc) is True and "JavaScript" not in doc.text  # line removed
    assert doc.text == good


def test_fineweb(steps, good):
    menu = "\n".join(["Home", "About us", "Products", "Contact", "Blog", "Shop"] * 3 + [good])
    assert verdict(steps["fineweb"], menu)[0] is False
    assert verdict(steps["fineweb"], good + "\n" + "\n".join(["\n"] * 40))[0] is True


def test_extractors_keep_main_text_and_drop_boilerplate(good):
    from llm_jax.curate.steps import LocatedTrafilatura, Resiliparse

    html = ("<html><head><title>T</title><script>var x = 1;</script></head><body>"
            "<nav><a href='/'>Home</a> <a href='/shop'>Shop</a></nav><article>"
            + "".join(f"<p>{p}</p>" for p in good.split("\n"))
            + "</article><footer>Copyright 2024 Example Corp. All rights reserved.</footer>"
            "</body></html>")
    for extractor in (Resiliparse(), LocatedTrafilatura(timeout=30)):
        text = extractor.extract(html)
        assert good.split("\n")[0][:200] in text, type(extractor).__name__
        assert "var x" not in text and "All rights reserved" not in text
