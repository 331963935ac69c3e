"""The search tool: BM25 finds a query's passage, the index round-trips memory-mapped, calls
reach it through the toolbox, and its output is forced in with loss mask 0."""

import json
import math

import jax
import numpy as np
import pytest

from llm_jax.cli import main
from llm_jax.data.chat import render_for_training
from llm_jax.data.records import read_records, text_field
from llm_jax.errors import DataError
from llm_jax.eval.chat import generate_replies
from llm_jax.generate.sampler import SamplingConfig
from llm_jax.generate.search import (
    SearchIndex,
    build_search_index,
    headed_passages,
    indexed_words,
    source_title,
    window,
    words,
)
from llm_jax.generate.tools import Toolbox, ToolTokens, make_tools, search_call, tool_output
from llm_jax.rl.experience import learner_batch
from tests.generate.test_tools import EOS, TOOLS, ScriptedSampler
from tests.helpers import CharTokenizer


class _Tok(CharTokenizer):
    """Bytes, and tool tokens (ids 300-303) that decode to nothing."""

    stop_ids = (3,)

    def decode(self, ids) -> str:
        return super().decode([i for i in ids if i < 260])


TOK = _Tok()


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory, test_corpus):
    out = tmp_path_factory.mktemp("index")
    build_search_index([str(test_corpus / "emma.txt"), str(test_corpus / "kjv.txt")], out)
    return out


def test_passages_are_paragraphs_cut_at_line_ends():
    doc = "one two\nthree\n\n\nfour five six\nseven eight\nnine ten"
    assert [p for _, p in headed_passages([doc], passage_chars=1000)] == [
        "one two three", "four five six seven eight nine ten"]
    assert [p for _, p in headed_passages([doc], passage_chars=19)] == [
        "one two three", "four five six", "seven eight", "nine ten"]


def test_a_heading_goes_with_the_passages_under_it():
    doc = ("Luke 22\n\n  1 Now the feast\ndrew nigh.\n  2 And the chief\n\n"
           "Luke 23\n\n  1 And the whole")
    assert list(headed_passages([doc], passage_chars=20)) == [
        ("Luke 22", "1 Now the feast"), ("Luke 22", "drew nigh."), ("Luke 22", "2 And the chief"),
        ("Luke 23", "1 And the whole")]
    # one text read in pieces: the heading carries over; separate records start afresh
    pieces = ["Luke 22\n\n1 Now the feast", "2 And the chief"]
    assert [h for h, _ in headed_passages(pieces, one_text=True)] == ["Luke 22", "Luke 22"]
    assert [h for h, _ in headed_passages(pieces)] == ["Luke 22", ""]
    # a piece of one text may end with the next piece's heading
    pieces = ["1 Now the feast\n\nLuke 23", "1 And the whole"]
    assert list(headed_passages(pieces, one_text=True)) == [("", "1 Now the feast"),
                                                          ("Luke 23", "1 And the whole")]
    # a one-line record is a passage, not a heading; dialogue and "by" are no headings
    assert list(headed_passages(["apple banana", '"Yes."\n\nby\n\nShe went.'])) == [
        ("", "apple banana"), ("", '"Yes."'), ("", "by"), ("", "She went.")]


def test_the_window_goes_where_a_number_of_the_query_is():
    text = ("13 But I would not have you to be ignorant, brethren, concerning them which are "
            "asleep. 14 For if we believe that Jesus died")
    # "ignorant" and "14" each once, too far apart for one window: the number decides
    assert window(text, "ignorant 14", 20).startswith("14 For")
    assert window(text, "ignorant", 20).startswith("ignorant")


def test_a_verse_reference_finds_its_verse_under_the_chapter_heading(index_dir, test_corpus):
    # the heading is its own paragraph, far from most of its verses
    index = SearchIndex.load(index_dir, max_chars=120)
    assert words("Genesis 2:24?")[-1] == "2:24"  # a reference is a term of its own
    output = index("What are the first words of Genesis 2:24?")
    assert output.startswith("Kjv, Genesis 2: ")
    assert "24 Therefore shall a man leave his father" in output


def test_bm25_returns_the_passage_a_query_was_cut_from(index_dir):
    index = SearchIndex.load(index_dir)
    rng = np.random.default_rng(0)
    texts = [index.retriever.corpus[i]["text"] for i in range(len(index))]
    long_ones = [t for t in texts if len(t.split()) >= 40]
    for text in rng.choice(long_ones, 12, replace=False):
        tokens = text.split()
        start = int(rng.integers(0, len(tokens) - 12))
        query = " ".join(tokens[start:start + 12])
        assert index.search(query, k=1)[0][0] == text, query


def test_scores_are_bm25_by_hand(tmp_path):
    docs = ["apple banana apple", "banana cherry", "cherry cherry date fig"]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    build_search_index([str(tmp_path / "d.jsonl")], tmp_path / "ix")
    index = SearchIndex.load(tmp_path / "ix")
    k1, b, n = 1.5, 0.75, 3
    # a passage is found by its file's title too: "d" for d.jsonl
    lengths = [len(words(d)) + 1 for d in docs]
    avg = sum(lengths) / n

    def score(term, doc, length):
        tf, df = doc.split().count(term), sum(term in d.split() for d in docs)
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        # Lucene's BM25 leaves out the classic (k1 + 1) factor: the ranking is the same.
        return idf * tf / (tf + k1 * (1 - b + b * length / avg))

    expected = [score("apple", d, ln) + score("cherry", d, ln) for d, ln in zip(docs, lengths)]
    np.testing.assert_allclose(index.scores("Apple, cherry? unknownword"), expected, rtol=1e-5)


def test_index_round_trips_memory_mapped(tmp_path, test_corpus, index_dir):
    import bm25s

    entries = [{"source": source_title(f), "heading": h, "text": p}
               for f in ("emma.txt", "kjv.txt") for h, p in headed_passages(
                   read_records([str(test_corpus / f)], validate=text_field()), one_text=True)
               if words(p)]
    texts = [e["text"] for e in entries]
    fresh = bm25s.BM25()
    fresh.index([indexed_words(e) for e in entries], show_progress=False)
    loaded = SearchIndex.load(index_dir)
    assert len(loaded) == len(texts)
    assert isinstance(loaded.retriever.scores["data"], np.memmap)  # mapped, not read
    for query in ("Emma Woodhouse handsome clever", "God created the heaven", "Mr. Knightley"):
        known = [w for w in words(query) if w in fresh.vocab_dict]
        np.testing.assert_allclose(loaded.scores(query), fresh.get_scores(known), rtol=1e-6)
    assert [loaded.retriever.corpus[i]["text"] for i in range(5)] == texts[:5]


def test_toolbox_routes_calls_by_name(index_dir):
    index = SearchIndex.load(index_dir, k=1, max_chars=60)
    box = Toolbox({"search": index})
    top = index.search("Emma knows I never flatter her")[0][0]
    out = box.run("search: Emma knows I never flatter her")
    # The passage's source and heading, then 60 characters in all, from where the query's
    # words are.
    assert out == "Emma, CHAPTER I: " + top[:43]
    assert top.startswith('"Emma knows I never flatter her,"')
    assert box.run('search("Emma knows I never flatter her")') == out
    assert box.run("search: zzzqqq") == "no results"
    assert box.run("37 * 48") == "1776" and box.run("import os") == "error"
    assert Toolbox().run("search: Emma") == "error"  # no search tool: the calculator refuses


def test_output_is_the_window_holding_the_query():
    text = "alpha beta gamma. " * 10 + "the quick brown fox said Morland. " + "delta. " * 10
    assert window(text, "quick brown fox", 40) == "quick brown fox said Morland. delta. del"
    assert window("short text", "fox", 40) == "short text"


def test_search_call_in_a_rollout_is_answered_with_loss_mask_zero(index_dir):
    tools = ToolTokens(*(TOOLS.python_start, TOOLS.python_end, TOOLS.output_start,
                         TOOLS.output_end), toolbox=Toolbox({"search": SearchIndex.load(
                             index_dir, max_chars=60)}))
    call = [TOOLS.python_start, *TOK.encode(search_call("Emma Woodhouse handsome clever rich")),
            TOOLS.python_end]
    sampler = ScriptedSampler([[[50, *call], [*TOK.encode("Emma"), EOS]]])
    cfg = SamplingConfig(max_new_tokens=160, stop_tokens=(EOS,))
    rollout, texts = generate_replies(sampler, None, [[0, 9]], jax.random.PRNGKey(0), cfg, TOK,
                                      tools)
    forced = tool_output([*call], TOK, tools)
    assert TOK.decode(forced[1:-1]).startswith("Emma, CHAPTER I: Emma Woodhouse, handsome, clever")
    row = [50, *call, *forced, *TOK.encode("Emma"), EOS]
    assert rollout.tokens[0, :len(row)].tolist() == row
    batch = learner_batch(rollout)
    start = 1 + len(call)
    expected = [1] * start + [0] * len(forced) + [1] * 5 + [0] * (160 - len(row))
    assert batch["loss_mask"][0].tolist() == expected
    assert (batch["old_logprobs"][0, start:start + len(forced)] == 0).all()
    assert "Emma Woodhouse" in texts[0]


def test_sft_search_parts_train_the_call_not_the_output():
    class Tok:  # our template needs special ids by name
        bos_id = 2
        ids = {"<|im_start|>": 290, "<|im_sep|>": 291, "<|im_end|>": 292,
               "<|python_start|>": 300, "<|python_end|>": 301, "<|output_start|>": 302,
               "<|output_end|>": 303}

        def encode(self, text):
            return TOK.encode(text)

        def special_id(self, token):
            return self.ids[token]

    messages = [{"role": "user", "content": "Who?"}, {"role": "assistant", "content": [
        {"type": "python", "text": search_call("who")}, {"type": "output", "text": "Emma"},
        {"type": "text", "text": "Emma"}]}]
    ids, mask = render_for_training(messages, Tok())
    call = [300, *TOK.encode("search: who"), 301]
    out = [302, *TOK.encode("Emma"), 303]
    at = ids.index(300)
    assert ids[at:at + len(call) + len(out)] == call + out
    assert mask[at:at + len(call)] == [1] * len(call)
    assert mask[at + len(call):at + len(call) + len(out)] == [0] * len(out)


def test_malformed_index_or_corpus_is_one_line(tmp_path, index_dir, capsys):
    bad = tmp_path / "bad_index"
    bad.mkdir()
    with pytest.raises(DataError, match=str(bad)):
        make_tools(TOK_WITH_SPECIALS, {"search": {"index": str(bad)}})
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in index_dir.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "params.index.json").write_text("{not json")
    with pytest.raises(DataError, match=str(broken)):
        SearchIndex.load(broken)
    (tmp_path / "empty.txt").write_text("\n\n")
    for argv, named in (([str(tmp_path / "empty.txt")], "empty.txt"),
                        (["/no/such/corpus"], "/no/such/corpus")):
        assert main(["index", *argv, "--out", str(tmp_path / "ix")]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and named in err


class _SpecialTok:
    def special_id(self, token):
        return 300


TOK_WITH_SPECIALS = _SpecialTok()


def test_sample_answers_search_calls_or_names_a_bad_index(tiny_pretrained_run, index_dir,
                                                          tmp_path, capsys):
    args = ["sample", str(tiny_pretrained_run), "--prompt", "It is", "--max-new-tokens", "4",
            "--seed", "0"]
    assert main([*args, "--search", str(index_dir)]) == 0
    assert "--- sample 0" in capsys.readouterr().out
    assert main([*args, "--search", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(tmp_path / "nowhere") in err


class _ChatTok(_Tok):
    """Bytes, our template's special tokens and the tool tokens (decoding to nothing)."""

    ids = {"<|im_start|>": 290, "<|im_sep|>": 291, "<|im_end|>": 292,
           "<|python_start|>": 300, "<|python_end|>": 301, "<|output_start|>": 302,
           "<|output_end|>": 303}

    def special_id(self, token):
        return self.ids[token]


def test_a_search_call_without_a_query_searches_the_users_question(index_dir):
    from llm_jax.data.chat import OurTemplate
    from llm_jax.generate.tools import last_user_text

    tok = _ChatTok()
    question = "Who is handsome, clever, and rich?"
    prompt = OurTemplate().render_for_generation(
        [{"role": "user", "content": "Hello there"}, {"role": "assistant", "content": "Hi"},
         {"role": "user", "content": question}], tok)
    assert last_user_text(prompt, tok) == question  # the last user turn, whole
    assert last_user_text(prompt[:3], tok) == ""
    index = SearchIndex.load(index_dir, max_chars=60)
    tools = ToolTokens.from_tokenizer(tok, Toolbox({"search": index}))
    call = [300, *tok.encode("search:"), 301]
    sampler = ScriptedSampler([[], [], [[50, *call], [*tok.encode("Emma"), EOS]]])
    cfg = SamplingConfig(max_new_tokens=160, stop_tokens=(EOS,))
    rollout, _ = generate_replies(sampler, None, [prompt], jax.random.PRNGKey(0), cfg, tok,
                                  tools)
    forced = tool_output(call, tok, tools, prompt)
    assert tok.decode(forced) == index(question) != index("")
    assert index(question).startswith("Emma, CHAPTER I: handsome, clever, and rich, with a")
    row = [50, *call, *forced, *tok.encode("Emma"), EOS]
    assert rollout.tokens[0, :len(row)].tolist() == row
    # A call with a query still searches for it.
    assert Toolbox({"search": index}).run("search: Genesis", lambda: question) == \
        index("Genesis")


def test_a_verse_is_found_by_its_reference_not_by_the_questions_words(tmp_path):
    verses = {1: ["the first light", "the waters parted", "a garden grew"],
              2: ["the first king", "the king slept", "a river ran east"]}
    text = "\n\n".join(f"Book {c}\n\n" + "\n\n".join(f"  {v} {line}" for v, line in
                                                    enumerate(lines, 1))
                       for c, lines in verses.items())
    (tmp_path / "book.txt").write_text(text)
    build_search_index([str(tmp_path / "book.txt")], tmp_path / "ix")
    index = SearchIndex.load(tmp_path / "ix")
    # "first" points elsewhere; the reference 2:3 decides
    assert index.search("What are the first words of Book 2:3?")[0][0] == "3 a river ran east"
    assert index("What are the first words of Book 1:2?") == "Book, Book 1: 2 the waters parted"
