"""Conversation loaders: every layout gives the same messages; each bad record is a DataError
naming file:line (or file: row N), or is skipped and counted under skip_bad."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llm_jax.data.chat import rendered_length
from llm_jax.data.conversations import conversation_validator, read_conversations
from llm_jax.data.errors import DataError
from llm_jax.data.records import BadRecordStats
from tests.helpers import CharTokenizer

EXPECTED = [{"role": "system", "content": "Be kind."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"}]
LAYOUTS = {
    "messages": {"messages": EXPECTED},
    "sharegpt": {"conversations": [{"from": "system", "value": "Be kind."},
                                   {"from": "human", "value": "Hi"},
                                   {"from": "gpt", "value": "Hello!"}]},
    "prompt_completion": {"prompt": EXPECTED[:2], "completion": EXPECTED[2:]},
}
GOOD = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]}


class ChatCharTokenizer(CharTokenizer):
    """Bytes plus the chat special ids our template needs."""

    SPECIAL = ("<|im_start|>", "<|im_sep|>", "<|im_end|>", "<|eos|>", "<|python_start|>",
               "<|python_end|>", "<|output_start|>", "<|output_end|>")

    def special_id(self, token):
        return 260 + self.SPECIAL.index(token)


def _jsonl(path, lines):
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return str(path)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_layout_gives_the_same_messages(tmp_path, layout):
    path = _jsonl(tmp_path / "c.jsonl", [LAYOUTS[layout]])
    assert list(read_conversations([path])) == [EXPECTED]
    assert list(read_conversations([path], layout=layout)) == [EXPECTED]


def test_string_prompt_completion_is_a_user_and_an_assistant_turn(tmp_path):
    path = _jsonl(tmp_path / "c.jsonl", [{"prompt": "2+2?", "completion": "4"}])
    assert list(read_conversations([path])) == [[{"role": "user", "content": "2+2?"},
                                                 {"role": "assistant", "content": "4"}]]


def test_parquet_rows(tmp_path):
    table = pa.Table.from_pylist([{"messages": EXPECTED}, {"messages": GOOD["messages"]}])
    pq.write_table(table, tmp_path / "c.parquet")
    assert list(read_conversations([str(tmp_path / "c.parquet")])) == [EXPECTED, GOOD["messages"]]
    bad = pa.Table.from_pylist([GOOD, {"messages": [{"role": "user", "content": "only"}]}])
    pq.write_table(bad, tmp_path / "bad.parquet")
    with pytest.raises(DataError, match=r"bad\.parquet: row 1: no assistant turn"):
        list(read_conversations([str(tmp_path / "bad.parquet")]))


BAD = [
    ({"messages": [{"role": "wizard", "content": "x"}, {"role": "assistant", "content": "y"}]},
     "message 0 has unknown role 'wizard'"),
    ({"messages": [{"role": "user", "content": "  "}, {"role": "assistant", "content": "y"}]},
     "message 0 (user) has empty content"),
    ({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": None}]},
     "message 1 (assistant) has empty content"),
    ({"messages": [{"role": "user", "content": "Hi"}]}, "no assistant turn"),
    ("{\"messages\": [", "invalid JSON"),
    ({"conversations": [{"from": "alien", "value": "x"}]}, "message 0 has unknown role 'alien'"),
    ({"text": "not a chat"}, "not a conversation: expected a 'messages'"),
    ({"prompt": "Q", "completion": ["A"]}, "both be strings or both message lists"),
    ({"messages": [{"role": "user", "content": "x" * 80},
                   {"role": "assistant", "content": "y"}]},
     "conversation is 100 tokens after rendering, longer than seq_len=64"),
]


@pytest.mark.parametrize("record,message", BAD, ids=[m[:24] for _, m in BAD])
def test_bad_record_names_file_and_line(tmp_path, record, message):
    path = _jsonl(tmp_path / "c.jsonl", [GOOD, GOOD, record, GOOD])
    tok = ChatCharTokenizer()
    with pytest.raises(DataError) as error:
        list(read_conversations([path], tokenizer=tok, seq_len=64))
    assert str(error.value).startswith(f"{path}:3: ")
    assert message in str(error.value)
    stats = BadRecordStats()
    kept = list(read_conversations([path], tokenizer=tok, seq_len=64, skip_bad=True,
                                   stats=stats))
    assert kept == [GOOD["messages"]] * 3 and stats.count == 1
    assert stats.examples[0].startswith(f"{path}:3: ")


def test_length_check_counts_rendered_tokens():
    tok = ChatCharTokenizer()
    messages = GOOD["messages"]
    # <|bos|> + 2 × (<|im_start|> role <|im_sep|> content <|im_end|>), minus the shift.
    expected = 1 + (3 + len("user") + 2) + (3 + len("assistant") + 2) - 1
    assert rendered_length(messages, tok) == expected
    conversation_validator(tokenizer=tok, seq_len=expected)(GOOD)
    with pytest.raises(ValueError, match=f"{expected} tokens after rendering"):
        conversation_validator(tokenizer=tok, seq_len=expected - 1)(GOOD)
    with pytest.raises(DataError, match="data.layout='chatml' is not one of"):
        conversation_validator("chatml")
