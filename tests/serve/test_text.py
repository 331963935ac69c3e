"""Token ids → content parts: tool calls as their own parts, stop strings, held-back text."""

from __future__ import annotations

import pytest

from llm_jax.data.tokenizer import TOKENIZER_FILE, Tokenizer
from llm_jax.generate.tools import ToolTokens, tool_output
from llm_jax.serve.text import PartStream


@pytest.fixture(scope="module")
def tokenizer(tiny_hf_folder) -> Tokenizer:
    return Tokenizer.load(tiny_hf_folder / TOKENIZER_FILE)


def feed(stream: PartStream, ids) -> list[dict]:
    deltas = []
    for t in ids:
        deltas += stream.token(t)
    return deltas


def test_a_calculator_call_comes_back_as_content_parts(tokenizer):
    tools = ToolTokens.from_tokenizer(tokenizer)
    stream = PartStream(tokenizer, hidden={tokenizer.eos_id}, tools=tools)
    call = [tools.python_start, *tokenizer.encode("37 * 48"), tools.python_end]
    deltas = feed(stream, tokenizer.encode("So it is") + call)
    deltas += stream.forced(tool_output(call, tokenizer, tools))
    deltas += feed(stream, [*tokenizer.encode("in all"), tokenizer.eos_id]) + stream.flush()
    assert stream.content() == [{"type": "text", "text": "So it is"},
                                {"type": "python", "text": "37 * 48"},
                                {"type": "output", "text": "1776"},
                                {"type": "text", "text": "in all"}]
    assert {d["type"] for d in deltas} == {"text", "python", "output"}
    assert "".join(d["text"] for d in deltas if d["type"] == "text") == "So it isin all"


def test_stop_string_cuts_the_text_and_is_never_shown(tokenizer):
    ids = tokenizer.encode("She walked to the pump room and then home")
    stream = PartStream(tokenizer, stop_strings=["pump"])
    deltas = feed(stream, ids)
    shown = "".join(d["text"] for d in deltas)
    assert stream.stopped and shown == "She walked to the " and stream.content() == shown
    assert feed(stream, tokenizer.encode("more")) == [] and stream.flush() == []


def test_text_that_may_begin_a_stop_string_waits_and_then_flushes(tokenizer):
    stream = PartStream(tokenizer, stop_strings=["the end"])
    shown = "".join(d["text"] for d in feed(stream, tokenizer.encode("to the")))
    assert shown == "to " and not stream.stopped  # "the" may still become "the end"
    assert "".join(d["text"] for d in stream.flush()) == "the"
    assert stream.content() == "to the"


def test_plain_replies_are_strings_and_deltas_add_up(tokenizer):
    text = "Catherine Morland, in Bath, 1798: “Oh!”"
    stream = PartStream(tokenizer)
    deltas = feed(stream, tokenizer.encode(text)) + stream.flush()
    assert "".join(d["text"] for d in deltas) == stream.content() == tokenizer.decode(
        tokenizer.encode(text))
