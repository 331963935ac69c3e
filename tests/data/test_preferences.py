"""Preference data: every layout gives the same pair, rankings expand to all ordered pairs,
bad records name file:line (or are skipped and counted), and tokenized pairs keep the reply
whole under truncation."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llm_jax.data.chat import render_for_generation
from llm_jax.data.errors import DataError
from llm_jax.data.preferences import (
    PreferencePair,
    preference_batch,
    ranking_pairs,
    read_preferences,
    tokenize_pair,
)
from llm_jax.data.records import BadRecordStats
from tests.helpers import CharTokenizer

SYSTEM = {"role": "system", "content": "Be kind."}
USER = {"role": "user", "content": "What colour is the sky?"}
CHOSEN, REJECTED = "It is blue.", "Green, I think."
PROMPT = [SYSTEM, USER]
LAYOUTS = {
    "explicit": {"prompt": PROMPT, "chosen": CHOSEN, "rejected": REJECTED},
    "explicit conversational": {
        "prompt": PROMPT, "chosen": [{"role": "assistant", "content": CHOSEN}],
        "rejected": [{"role": "assistant", "content": REJECTED}]},
    "implicit": {"chosen": [*PROMPT, {"role": "assistant", "content": CHOSEN}],
                 "rejected": [*PROMPT, {"role": "assistant", "content": REJECTED}]},
    "hh": {"chosen": f"\n\nHuman: {SYSTEM['content']}\n\nAssistant: Hello."
                     f"\n\nHuman: {USER['content']}\n\nAssistant: {CHOSEN}",
           "rejected": f"\n\nHuman: {SYSTEM['content']}\n\nAssistant: Hello."
                       f"\n\nHuman: {USER['content']}\n\nAssistant: {REJECTED}"},
}
GOOD = {"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away."}


class ChatCharTokenizer(CharTokenizer):
    """Bytes plus the chat special ids our template needs."""

    SPECIAL = ("<|im_start|>", "<|im_sep|>", "<|im_end|>", "<|eos|>")

    def special_id(self, token):
        return 260 + self.SPECIAL.index(token)

    def decode(self, ids):
        return super().decode([i for i in ids if i < 260])


def _jsonl(path, lines):
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return str(path)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_layout_gives_the_same_pair(tmp_path, layout):
    path = _jsonl(tmp_path / "p.jsonl", [{**LAYOUTS[layout], "answer": "blue"}])
    (pair,) = read_preferences([path])
    prompt = PROMPT if layout != "hh" else [
        {"role": "user", "content": SYSTEM["content"]},
        {"role": "assistant", "content": "Hello."}, USER]
    assert pair == PreferencePair(prompt, CHOSEN, REJECTED, {"answer": "blue"})
    name = layout.split()[0]
    assert list(read_preferences([path], layout=name)) == [pair]


def test_text_prompt_is_one_user_turn_and_meta_is_merged(tmp_path):
    path = _jsonl(tmp_path / "p.jsonl", [{**GOOD, "id": 7, "meta": {"answer": "4"}}])
    (pair,) = read_preferences([path])
    assert pair.prompt_messages == [{"role": "user", "content": "Hi"}]
    assert pair.meta == {"id": 7, "answer": "4"}


def test_ranking_expands_to_every_ordered_pair(tmp_path):
    responses = ["a", "b", "c", "d"]
    record = {"prompt": "Q", "responses": responses, "ranking": [2, 0, 3, 1], "model": "m"}
    pairs = list(read_preferences([_jsonl(tmp_path / "r.jsonl", [record])]))
    # best→worst is c, a, d, b: each beats every one below it, 4·3/2 = 6 pairs
    assert [(p.chosen, p.rejected) for p in pairs] == [
        ("c", "a"), ("c", "d"), ("c", "b"), ("a", "d"), ("a", "b"), ("d", "b")]
    assert [p.meta["ranks"] for p in pairs] == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    assert all(p.meta["model"] == "m" for p in pairs)
    # identical responses make no pair; an empty response may be ranked (last, here)
    pairs = ranking_pairs([USER], ["x", "x", ""], [0, 1, 2])
    assert [(p.chosen, p.rejected) for p in pairs] == [("x", ""), ("x", "")]


def test_parquet_rows(tmp_path):
    table = pa.Table.from_pylist([GOOD, {**GOOD, "chosen": "Hello."}])
    pq.write_table(table, tmp_path / "p.parquet")
    assert [p.chosen for p in read_preferences([str(tmp_path / "p.parquet")])] == \
        ["Hello!", "Hello."]
    pq.write_table(pa.Table.from_pylist([GOOD, {**GOOD, "chosen": " "}]), tmp_path / "b.parquet")
    with pytest.raises(DataError, match=r"b\.parquet: row 1: 'chosen' is empty"):
        list(read_preferences([str(tmp_path / "b.parquet")]))


BAD = [
    ({"prompt": "Hi", "chosen": "Hello!"}, "no field 'rejected'"),
    ({"prompt": " ", "chosen": "a", "rejected": "b"}, "'prompt' is empty"),
    ({"prompt": "Hi", "chosen": "", "rejected": "b"}, "'chosen' is empty"),
    ({"prompt": "Hi", "chosen": "same", "rejected": "same "}, "are the same reply"),
    ({"prompt": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}],
      "chosen": "a", "rejected": "b"}, "'prompt' ends with an assistant turn"),
    ({"prompt": "Hi", "chosen": [{"role": "user", "content": "a"}], "rejected": "b"},
     "'chosen' must be text or one assistant message"),
    ({"chosen": [USER, {"role": "assistant", "content": "a"}],
      "rejected": [SYSTEM, {"role": "assistant", "content": "b"}]},
     "differ before their final assistant turn"),
    ({"chosen": "\n\nHuman: Hi\n\nAssistant: a", "rejected": "no turns here"},
     "'rejected' is not HH-RLHF text"),
    ({"chosen": "\n\nHuman: Hi\n\nAssistant:", "rejected": "\n\nHuman: Hi\n\nAssistant: b"},
     "'chosen' is empty"),
    ({"prompt": "Q", "responses": ["a", "b", "c"], "ranking": [1, 2, 3]},
     "'ranking' [1, 2, 3] is not a permutation of 0..2"),
    ({"prompt": "Q", "responses": ["a", "b"], "ranking": [0, 0]}, "not a permutation"),
    ({"prompt": "Q", "responses": ["a", "b"], "ranking": ["0", "1"]}, "integers"),
    ({"prompt": "Q", "responses": ["a"], "ranking": [0]}, "at least 2 replies"),
    ({"prompt": "Q", "responses": ["a", "a"], "ranking": [0, 1]}, "all responses are the same"),
    ({"text": "hello"}, "not a preference record"),
    ("{\"prompt\": ", "invalid JSON"),
    ({"prompt": "Hi", "chosen": "y" * 70, "rejected": "b"}, "pair does not fit in seq_len=64"),
]


@pytest.mark.parametrize("record,message", BAD, ids=[m[:28] for _, m in BAD])
def test_bad_record_names_file_and_line(tmp_path, record, message):
    path = _jsonl(tmp_path / "p.jsonl", [GOOD, GOOD, record, GOOD])
    tok = ChatCharTokenizer()
    with pytest.raises(DataError) as error:
        list(read_preferences([path], tokenizer=tok, seq_len=64))
    assert str(error.value).startswith(f"{path}:3: ")
    assert message in str(error.value)
    stats = BadRecordStats()
    kept = list(read_preferences([path], tokenizer=tok, seq_len=64, skip_bad=True, stats=stats))
    assert len(kept) == 3 and stats.count == 1
    assert stats.examples[0].startswith(f"{path}:3: ")


def test_tokenize_pair_masks_only_the_reply():
    tok = ChatCharTokenizer()
    pair = PreferencePair([USER], "Yes.", "No, never.")
    t = tokenize_pair(pair, tok)
    prompt = render_for_generation([USER], tok)
    end = tok.special_id("<|im_end|>")
    assert list(t.chosen_ids) == [*prompt, *tok.encode("Yes."), end]
    assert list(t.chosen_mask) == [0] * len(prompt) + [1] * 5
    assert list(t.rejected_ids) == [*prompt, *tok.encode("No, never."), end]
    assert list(t.rejected_mask) == [0] * len(prompt) + [1] * 11
    assert (t.chosen_last, t.rejected_last, t.prompt_cut) == (len(prompt) + 4,
                                                              len(prompt) + 10, 0)


def test_truncation_keeps_bos_the_prompt_tail_and_both_replies():
    tok = ChatCharTokenizer()
    pair = PreferencePair([{"role": "user", "content": "x" * 30 + "TAIL"}], "Yes.", "No, never.")
    prompt = render_for_generation(pair.prompt_messages, tok)   # 47 tokens
    t = tokenize_pair(pair, tok, seq_len=40)
    # the longer reply is 11 tokens, so 29 prompt tokens stay: <|bos|> + the last 28
    assert t.prompt_cut == len(prompt) - 29 and len(t.rejected_ids) == 40
    assert list(t.rejected_ids[:29]) == [tok.bos_id, *prompt[-28:]]
    assert list(t.chosen_ids[:29]) == list(t.rejected_ids[:29])
    assert tok.decode(t.rejected_ids[t.rejected_mask == 1]) == "No, never."
    assert "TAIL" in tok.decode(t.chosen_ids)
    with pytest.raises(ValueError, match="leaving 7 for the prompt"):
        tokenize_pair(pair, tok, seq_len=18)


def test_preference_batch_pads_rows_and_positions():
    tok = ChatCharTokenizer()
    pairs = [tokenize_pair(PreferencePair([USER], c, r), tok) for c, r in [("a", "bb"),
                                                                           ("ccc", "d")]]
    batch = preference_batch(pairs, seq_len=48, pad_id=tok.pad_id, batch_size=4)
    np.testing.assert_array_equal(batch["weights"], [1, 1, 0, 0])
    assert batch["chosen_tokens"].shape == (4, 48)
    for row, pair in enumerate(pairs):
        n = len(pair.chosen_ids)
        assert batch["chosen_last"][row] == n - 1 == pair.chosen_last
        np.testing.assert_array_equal(batch["chosen_tokens"][row, :n], pair.chosen_ids)
        assert (batch["chosen_tokens"][row, n:] == tok.pad_id).all()
        assert batch["chosen_segment_ids"][row].sum() == n
        np.testing.assert_array_equal(batch["rejected_loss_mask"][row, :len(pair.rejected_ids)],
                                      pair.rejected_mask)
    assert batch["rejected_segment_ids"][2:].sum() == 0
