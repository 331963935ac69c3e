"""Tokenizer: exact round trip, special ids, no injection from raw text, split digits."""

import pytest

from llm_jax.data.errors import DataError
from llm_jax.data.tokenizer import CHAT_TOKENS, SPECIAL_TOKENS, Tokenizer

TRICKY = "  two  spaces\n\nnew para 12345 café — “quoted” 🎉\t tab\n\n\n end "


@pytest.fixture(scope="module")
def tok(tmp_path_factory, austen_text):
    return Tokenizer.train([austen_text], 1024, tmp_path_factory.mktemp("tok") / "t.model")


def test_round_trip_is_exact(tok, austen_text):
    for text in (austen_text[:50_000], TRICKY, "<|im_start|>user<|im_end|>", ""):
        assert tok.decode(tok.encode(text)) == text


def test_vocab_and_special_ids(tok):
    assert tok.vocab_size == 1024
    assert (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id) == (0, 1, 2, 3)
    ids = [tok.special_id(t) for t in SPECIAL_TOKENS]
    assert len(set(ids)) == len(SPECIAL_TOKENS) and max(ids) < tok.vocab_size
    with pytest.raises(KeyError, match="not a special token"):
        tok.special_id("<|nope|>")


def test_raw_text_cannot_produce_special_ids(tok):
    specials = {tok.special_id(t) for t in SPECIAL_TOKENS}
    ids = tok.encode("<|im_start|>assistant<|im_sep|>hi<|im_end|><|eos|><|bos|>")
    assert not specials & set(ids)
    assert tok.decode([tok.special_id(CHAT_TOKENS[0])]) == ""  # control symbols render empty


def test_digits_are_split(tok):
    ids = tok.encode("12345")
    assert len(ids) == 5 and [tok.decode([i]) for i in ids] == list("12345")


def test_save_load_and_byte_lengths(tok, austen_text):
    again = Tokenizer.load(tok.model_path)
    text = austen_text[:20_000] + TRICKY
    assert again.encode(text) == tok.encode(text)
    lengths = tok.token_byte_lengths()
    assert lengths[tok.encode(text)].sum() == len(text.encode())
    assert lengths[tok.bos_id] == 0


def test_missing_or_bad_model_names_the_path(tmp_path):
    with pytest.raises(DataError, match="missing.model: tokenizer model not found"):
        Tokenizer.load(tmp_path / "missing.model")
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"not a model")
    with pytest.raises(DataError, match="bad.model: not a readable"):
        Tokenizer.load(bad)


def test_corpus_too_small_for_vocab_size_names_the_setting(tmp_path):
    with pytest.raises(DataError) as err:
        Tokenizer.train(["a tiny corpus.\n\nwith two paragraphs"], 4096, tmp_path / "t.model",
                        corpus_name="tiny/train")
    message = str(err.value)
    assert "\n" not in message
    assert "data.vocab_size=4096 is too large for tiny/train (it allows at most " in message
    assert not (tmp_path / "t.model").exists()
