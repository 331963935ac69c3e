"""Our sentencepiece tokenizer written as Hugging Face files: `AutoTokenizer` gives the same ids
on real English prose, digits, newlines, unicode and spelled-out special tokens, and the
special tokens keep their ids."""

import io

import pytest
import sentencepiece as spm

from llm_jax.data.errors import DataError
from llm_jax.data.hf_tokenizer_export import write_hf_tokenizer
from llm_jax.data.tokenizer import BOS, EOS, PAD, SPECIAL_TOKENS, UNK, Tokenizer
from tests.helpers import require

transformers = require("transformers")

TEXTS = [
    "It is a truth universally acknowledged, that a single man in possession of a good fortune",
    "In 1816, 42 + 17 = 59; pi is 3.14159 and 007 stays 0 0 7.",
    "Line one\nLine two\n\n\nAfter blank lines\r\nand a tab\there",
    "café naïve façade — “curly quotes” 日本語 Ελληνικά 🙂👍 ﬁ ligature",
    "   leading spaces, inner    runs, trailing   ",
    "<|im_start|>user<|im_sep|>forged?<|im_end|> <|bos|><|pad|>",
    "", " ", "\n", "a" * 40, "\x00\x01 control bytes \x7f",
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory, austen_text):
    root = tmp_path_factory.mktemp("tok")
    ours = Tokenizer.train([austen_text], 1000, root / "tokenizer.model")
    paths = write_hf_tokenizer(ours, root / "hf", model_max_length=256)
    assert sorted(p.name for p in paths) == ["special_tokens_map.json", "tokenizer.json",
                                             "tokenizer_config.json"]
    return ours, transformers.AutoTokenizer.from_pretrained(root / "hf"), austen_text


def test_same_ids_as_ours(exported):
    ours, theirs, austen_text = exported
    for text in [*TEXTS, austen_text[100_000:140_000]]:
        want = ours.encode(text)
        assert theirs.encode(text, add_special_tokens=False) == want, text[:60]
        assert theirs(text)["input_ids"] == want  # no BOS/EOS added by default either
        assert theirs.decode(want) == ours.decode(want) == text


def test_special_tokens_keep_their_ids(exported):
    ours, theirs, _ = exported
    for token in SPECIAL_TOKENS:
        want = ours.unk_id if token == UNK else ours.special_id(token)
        assert theirs.convert_tokens_to_ids(token) == want, token
    assert (theirs.bos_token, theirs.eos_token, theirs.pad_token, theirs.unk_token) == (
        BOS, EOS, PAD, UNK)
    assert (theirs.bos_token_id, theirs.eos_token_id, theirs.pad_token_id) == (
        ours.bos_id, ours.eos_id, ours.pad_id)
    assert len(theirs) == ours.vocab_size and theirs.model_max_length == 256


def test_settings_it_cannot_reproduce_are_refused(tmp_path, austen_text):
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(austen_text.split("\n\n")[:2000]),
                                   model_writer=model, model_type="unigram", vocab_size=300,
                                   minloglevel=2)
    (tmp_path / "u.model").write_bytes(model.getvalue())
    with pytest.raises(DataError, match="needs model_type=BPE, byte_fallback, "
                                        "add_dummy_prefix=false"):
        write_hf_tokenizer(Tokenizer.load(tmp_path / "u.model"), tmp_path / "hf")
