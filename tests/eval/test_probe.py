"""Knowledge probes: template questions carry the text's own answers, replies are scored by
normalised match, and the refusal data follows the scores."""

import math
import re

import pytest

from llm_jax.errors import ConfigError
from llm_jax.eval.probe import (
    REFUSAL,
    ProbeResult,
    ProbeSettings,
    is_correct,
    is_refusal,
    label,
    normalise,
    probe_metrics,
    probe_table,
    refusal_conversations,
    search_conversation,
)
from llm_jax.recipes.probes import ProbeQuestion, book_title, probe_questions, search_practice

NOVEL_A = """CHAPTER I

"I shall walk into the village before dinner," said Mr. Darcy, taking his hat.

Mr. Darcy walked. Mr. Darcy came back. "The roads are very dirty today, my dear!" said
Elizabeth, laughing at him.
"""
NOVEL_B = """Miss Bates talked. Miss Bates talked again; Miss Bates never stopped.
"What a delightful morning it has been for all of us," said Miss Bates.
Mr. Darcy was not here at all, whatever she said.
"""
BIBLE = """
Genesis 1

  1 In the beginning God created the heaven and the earth.
  2 And the earth was without form, and void; and darkness was upon the face of
the deep.
  3 Short verse.

Exodus 2

  1 And there went a man of the house of Levi.
"""


def test_questions_from_a_hand_made_corpus_have_the_right_answers():
    texts = {book_title("pride_and_prejudice.txt"): NOVEL_A, book_title("emma.txt"): NOVEL_B,
             book_title("kjv.txt"): BIBLE}
    assert list(texts) == ["Pride And Prejudice", "Emma", "King James Bible"]
    got = {(q.kind, q.question, q.answer, q.query)
           for q in probe_questions(texts, per_kind=50)}
    darcy = "I shall walk into the village before dinner"
    roads = "The roads are very dirty today, my dear"
    morning = "What a delightful morning it has been for all of us"
    assert got == {
        ("speaker", f'In Pride And Prejudice, who says "{darcy}"?', "Mr. Darcy", darcy),
        ("speaker", f'In Pride And Prejudice, who says "{roads}"?', "Elizabeth", roads),
        ("speaker", f'In Emma, who says "{morning}"?', "Miss Bates", morning),
        # Mr. Darcy is named in both books: no "which book" question about him.
        ("book", "In which book does Miss Bates appear?", "Emma", "Miss Bates"),
        ("verse", "What are the first words of Genesis 1:1?", "In the beginning God created",
         "Genesis 1:1"),
        ("verse", "What are the first words of Genesis 1:2?", "And the earth was without",
         "Genesis 1:2"),
        ("verse", "What are the first words of Exodus 2:1?", "And there went a man",
         "Exodus 2:1"),
    }  # Genesis 1:3 has fewer than 5 words: no question


def test_splits_are_stable_and_both_used(test_corpus):
    texts = {book_title(p): p.read_text() for p in sorted(test_corpus.glob("*.txt"))}
    first = probe_questions(texts, per_kind=200, seed=0)
    again = {q.question: q.split for q in probe_questions(texts, per_kind=200, seed=3)}
    assert all(again[q.question] == q.split for q in first if q.question in again)
    share = sum(q.split == "heldout" for q in first) / len(first)
    assert 0.15 < share < 0.35 and {q.kind for q in first} == {"speaker", "book", "verse"}


@pytest.mark.parametrize("reply, answer, right", [
    ("Mr. Knightley", "Mr. Knightley", True),  # exact
    ("It is said by mr knightley.", "Mr. Knightley", True),  # case, punctuation, title
    ("Knightley", "Mr. Knightley", True),  # the title is not part of the name
    ("Mr. Knight", "Mr. Knightley", False),  # a prefix of the word is not the word
    ("Mr. Elton", "Mr. Knightley", False),  # wrong
    ("the Emma", "Emma", True),
    ("Emmanuel", "Emma", False),
    ("In the beginning, God created!", "In the beginning God created", True),
    ("In the beginning God", "In the beginning God created", False),  # incomplete
    ("", "Emma", False),
])
def test_scoring_table(reply, answer, right):
    assert is_correct(reply, answer) is right


def test_normalise_and_refusals():
    assert normalise("  The Miss BATES, (of Highbury)! ") == "bates of highbury"
    assert is_refusal("I don't know.") and is_refusal("Sorry, I do not know that.")
    assert is_refusal("I’m not sure.") and not is_refusal("I know: Emma.")


def _result(question, answer, correct, split="train", query=""):
    answers = tuple(answer if ok else "Nobody" for ok in correct)
    return ProbeResult(ProbeQuestion(question, answer, "speaker", "Emma", split, query),
                       answers, tuple(correct))


def test_refusal_data_follows_the_scores():
    settings = ProbeSettings(known_at=0.75, unknown_at=0.25)
    results = [_result("Q known", "Emma", [True, True, True, False]),  # 0.75: known
               _result("Q unknown", "Harriet", [True, False, False, False],  # 0.25: unknown
                       query="the line"),
               _result("Q unsure", "Jane", [True, True, False, False]),  # 0.5: left out
               _result("Q held out", "Frank", [False] * 4, split="heldout")]
    assert [label(r, settings) for r in results] == ["known", "unknown", "unsure", "unknown"]
    plain = refusal_conversations(results, settings)
    assert plain == [
        [{"role": "user", "content": "Q known"}, {"role": "assistant", "content": "Emma"}],
        [{"role": "user", "content": "Q unknown"}, {"role": "assistant", "content": REFUSAL}]]
    searched = refusal_conversations(results, settings,
                                     search=lambda q: f'"{q}," said Harriet')
    assert searched[0] == plain[0]
    assert searched[1][1]["content"] == [
        {"type": "python", "text": "search: the line"},  # the question's query
        {"type": "output", "text": '"the line," said Harriet'},
        {"type": "text", "text": "Harriet."}]
    # A search whose output does not hold the answer ends in "I don't know", not a guess.
    missed = refusal_conversations(results, settings, search=lambda q: f"passage for {q}")
    assert missed[1][1]["content"][1:] == [
        {"type": "output", "text": "passage for the line"}, {"type": "text", "text": REFUSAL}]
    # Stricter thresholds move the same scores to other labels.
    strict = ProbeSettings(known_at=1.0, unknown_at=0.0)
    assert [label(r, strict) for r in results] == ["unsure", "unsure", "unsure", "unknown"]


def test_metrics_against_a_baseline():
    settings = ProbeSettings()
    before = probe_table([_result("A", "Emma", [True] * 4, "heldout"),
                          _result("B", "Jane", [False] * 4, "heldout"),
                          _result("C", "Frank", [False] * 4, "heldout")], settings)
    after = [ProbeResult(ProbeQuestion("A", "Emma", "book", "Emma", "heldout"),
                         ("Emma", REFUSAL, "Emma", "Emma"), (True, False, True, True)),
             ProbeResult(ProbeQuestion("B", "Jane", "book", "Emma", "heldout"),
                         (REFUSAL,) * 4, (False,) * 4),
             ProbeResult(ProbeQuestion("C", "Frank", "book", "Emma", "heldout"),
                         (REFUSAL, REFUSAL, "Jane", "Frank"), (False, False, False, True))]
    m = probe_metrics(probe_table(after, settings), before)
    assert m["accuracy"] == pytest.approx((0.75 + 0 + 0.25) / 3)
    assert m["refusal_on_unknown"] == pytest.approx((1.0 + 0.5) / 2)
    assert m["false_refusal_on_known"] == pytest.approx(0.25)
    assert m["known_questions"] == 1 and m["unknown_questions"] == 2
    assert math.isnan(probe_metrics(probe_table(after, settings),
                                    before[1:])["false_refusal_on_known"])
    assert probe_metrics(probe_table(after, settings), split="train") == {}


@pytest.mark.parametrize("argv, named", [
    (["/no/such/run"], "/no/such/run"),
    (["/no/such/run", "--corpus", "/no/such/corpus.txt"], "/no/such/corpus.txt"),
    (["/no/such/run", "--corpus", "{corpus}", "--baseline", "/no/such/probe.jsonl"],
     "/no/such/probe.jsonl"),
])
def test_probe_mistakes_are_one_line(test_corpus, capsys, argv, named):
    from llm_jax.cli import main

    argv = [a.replace("{corpus}", str(test_corpus / "emma.txt")) for a in argv]
    assert main(["probe", *argv]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and named in err, err


def test_arithmetic_questions_are_scored_by_the_final_answer():
    from llm_jax.eval.probe import score
    from llm_jax.generate.calculator import evaluate
    from llm_jax.recipes.probes import arithmetic_questions

    questions = arithmetic_questions(12, seed=1)
    assert len(questions) == 12 and {q.kind for q in questions} == {"arithmetic"}
    for q in questions:  # "What is 6 + 9 + 5?" -> the calculator's value of the expression
        expression = re.sub(r"^[A-Za-z ]+", "", q.question).rstrip("?.")
        assert evaluate(expression) == q.answer, q
    q = ProbeQuestion("What is 6 + 9 + 5?", "20", "arithmetic", "generated arithmetic")
    assert score("6 + 9 = 15\n15 + 5 = 20\n#### 20", q)
    assert not score("6 + 9 = 20\n20 + 5 = 25\n#### 25", q)  # 20 appears, but not as the answer
    assert is_correct("6 + 9 = 20\n20 + 5 = 25\n#### 25", "20")  # what plain matching says
    mixed = probe_questions({"Emma": NOVEL_B}, per_kind=5, arithmetic=4)
    assert [q.kind for q in mixed].count("arithmetic") == 4


def test_the_final_answer_is_what_follows_the_last_tool_output():
    import numpy as np

    from llm_jax.eval.probe import final_texts
    from llm_jax.generate.sampler import Rollout
    from llm_jax.generate.tools import ToolTokens
    from tests.helpers import CharTokenizer

    class Tok(CharTokenizer):
        stop_ids = (3,)

        def decode(self, ids):
            return super().decode([i for i in ids if i < 260])

    tok, tools = Tok(), ToolTokens(300, 301, 302, 303)
    rows = [[300, *tok.encode("search: x"), 301, 302, *tok.encode("Emma: said Knightley"), 303,
             *tok.encode("Harriet."), 3],
            [*tok.encode("Knightley."), 3]]
    width = max(map(len, rows)) + 2
    tokens = np.array([r + [0] * (width - len(r)) for r in rows], np.int32)
    rollout = Rollout(prompt_tokens=np.zeros((2, 1), np.int32),
                      prompt_mask=np.ones((2, 1), np.int32), tokens=tokens,
                      logprobs=np.zeros(tokens.shape, np.float32),
                      mask=(tokens > 0).astype(np.int32),
                      lengths=np.array([len(r) for r in rows], np.int32),
                      finish_reason=np.zeros(2, np.int32), prompt_index=np.arange(2))
    assert final_texts(rollout, tok, tools) == ["Harriet.", "Knightley."]
    # The passage named Knightley, the model answered Harriet: wrong.
    assert not is_correct(final_texts(rollout, tok, tools)[0], "Mr. Knightley")


def test_refusal_ratio_caps_refusals_per_kept_answer():
    results = [_result("Q known", "Emma", [True] * 4)]
    results += [_result(f"Q unknown {i}", "Harriet", [False] * 4) for i in range(10)]

    def refusals(ratio, seed=0):
        settings = ProbeSettings(refusal_ratio=ratio, seed=seed)
        chats = refusal_conversations(results, settings)
        assert chats[0][1]["content"] == "Emma"  # the kept answer always stays
        return [c[0]["content"] for c in chats if c[1]["content"] == REFUSAL]

    assert len(refusals(0.0)) == 10  # no cap
    assert len(refusals(3.0)) == 3 and len(refusals(2.5)) == 3  # ceil(ratio * 1 kept)
    assert len(refusals(20.0)) == 10
    picked = refusals(3.0)
    assert picked == refusals(3.0) and set(picked) <= {f"Q unknown {i}" for i in range(10)}
    assert any(refusals(3.0, seed) != picked for seed in range(1, 6))  # a seeded choice


def test_search_practice_adds_train_split_questions_a_search_answers():
    text = NOVEL_A + """
"I have not the pleasure of understanding you," replied Elizabeth, coolly.
"""
    texts = {"Pride And Prejudice": text, "Emma": NOVEL_B}
    every = search_practice(texts, limit=100, heldout_fraction=0.0)
    lines = {q.query: q.answer for q in every if q.kind == "speaker"}
    # `replied` counts as well as `said`; book questions need only two mentions.
    assert lines["I have not the pleasure of understanding you"] == "Elizabeth"
    assert lines["I shall walk into the village before dinner"] == "Mr. Darcy"
    assert ("In which book does Miss Bates appear?", "Emma") in {
        (q.question, q.answer) for q in every if q.kind == "book"}
    assert all(q.split == "train" for q in every)
    assert len(search_practice(texts, limit=2, heldout_fraction=0.0)) == 2
    excluded = search_practice(texts, limit=100, heldout_fraction=0.0,
                               exclude=[every[0].question])
    assert {q.question for q in excluded} == {q.question for q in every[1:]}
    # A held-out question (the split hashes the question) is never practised.
    assert search_practice(texts, limit=100, heldout_fraction=1.0) == []
    chat = search_conversation(every[0], lambda q: f"{every[0].book}: {q} {every[0].answer}")
    assert chat[1]["content"][2]["text"] == f"{every[0].answer}."


def test_search_conversations_can_search_with_the_question():
    question = ProbeQuestion('In Emma, who says "the line"?', "Harriet", "speaker", "Emma",
                             query="the line")
    asked = []

    def search(text):
        asked.append(text)
        return f'Emma: "{text}," said Harriet'

    by_query = search_conversation(question, search)[1]["content"]
    by_question = search_conversation(question, search, "question")[1]["content"]
    assert asked == ["the line", question.question]  # what the tool was given
    assert by_query[0]["text"] == "search: the line"
    assert by_question[0]["text"] == "search:"  # no query: the engine uses the question
    assert by_question[2]["text"] == "Harriet."
    with pytest.raises(ConfigError, match="probe.search_query='quote'"):
        search_conversation(question, search, "quote")


def test_probe_settings_come_from_the_config_section():
    from configs.probe import probe
    from llm_jax.trainers.probe import settings_from_config

    settings = settings_from_config(probe(refusal_ratio=2.0, search_query="question"))
    assert (settings.refusal_ratio, settings.search_query) == (2.0, "question")
    with pytest.raises(ConfigError, match=r"probe.search_query='quote' is not one of query"):
        settings_from_config(probe(search_query="quote"))
