"""`llm-jax tokenize`: a text's tokens, the chat template's special tokens, corpus statistics."""

import json

import pytest

from llm_jax.cli import main
from llm_jax.data.chat import render_for_generation
from llm_jax.data.tokenizer import Tokenizer

TEXT = "How many r's in strawberry? In the beginning, 37 * 48."


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory, austen_text):
    """A folder holding only a tokenizer, as a run directory holds it."""
    folder = tmp_path_factory.mktemp("tok")
    Tokenizer.train([austen_text[:150_000]], 512, folder / "tokenizer.model")
    return folder


def _json(capsys, *argv) -> dict:
    assert main(["tokenize", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_pieces_are_the_tokenizers_own(tokenizer_dir, capsys):
    tok = Tokenizer.load(tokenizer_dir / "tokenizer.model")
    out = _json(capsys, str(tokenizer_dir), TEXT)
    ids = tok.encode(TEXT)
    assert [t["id"] for t in out["tokens"]] == ids and out["count"] == len(ids)
    assert [t["piece"] for t in out["tokens"]] == [tok.sp.id_to_piece(i) for i in ids]
    assert "".join(t["text"] for t in out["tokens"]) == TEXT  # ASCII: each token decodes alone
    # Outside a terminal: the pieces joined by "|", then the count.
    assert main(["tokenize", str(tokenizer_dir), TEXT]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "|".join(t["text"] for t in out["tokens"])
    assert lines[1].startswith(f"{len(ids)} tokens, {len(TEXT)} bytes")
    assert main(["tokenize", str(tokenizer_dir), "--ids", TEXT]) == 0
    assert capsys.readouterr().out.split() == [str(i) for i in ids]


def test_bytes_without_a_piece_show_as_byte_tokens(tokenizer_dir, capsys):
    out = _json(capsys, str(tokenizer_dir), "☃")  # not in a 512-piece vocabulary: 3 bytes
    assert [t["piece"] for t in out["tokens"]] == ["<0xE2>", "<0x98>", "<0x83>"]


def test_chat_shows_the_templates_special_tokens(tokenizer_dir, capsys):
    tok = Tokenizer.load(tokenizer_dir / "tokenizer.model")
    out = _json(capsys, str(tokenizer_dir), "--chat", "What is 2 + 2?")
    expected = render_for_generation([{"role": "user", "content": "What is 2 + 2?"}], tok)
    assert [t["id"] for t in out["tokens"]] == expected
    pieces = [t["piece"] for t in out["tokens"]]
    assert pieces[:2] == ["<|bos|>", "<|im_start|>"] and pieces[-1] == "<|im_sep|>"
    assert pieces.count("<|im_end|>") == 1 and pieces.count("<|im_start|>") == 2
    assert main(["tokenize", str(tokenizer_dir), "What is 2 + 2?", "--chat"]) == 0
    shown = capsys.readouterr().out.splitlines()[0]
    assert shown.startswith("<|bos|>|<|im_start|>") and shown.endswith("|<|im_sep|>")


def test_corpus_bytes_per_token(tokenizer_dir, tmp_path, capsys):
    docs = ["It is a truth universally acknowledged.", "In the beginning God created."]
    (tmp_path / "c.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    tok = Tokenizer.load(tokenizer_dir / "tokenizer.model")
    ids = [i for d in docs for i in tok.encode(d)]
    out = _json(capsys, str(tokenizer_dir), "--corpus", str(tmp_path / "c.jsonl"))
    assert out["tokens"] == len(ids) and out["documents"] == 2
    assert out["bytes_per_token"] == pytest.approx(sum(map(len, docs)) / len(ids))
    top = max(set(ids), key=ids.count)
    assert out["top"][0]["count"] == ids.count(top)


@pytest.mark.parametrize("argv, named", [
    (["/no/such/run", "text"], "/no/such/run"),
    (["{run}", "--corpus", "/no/such/corpus.txt"], "/no/such/corpus.txt"),
    (["{run}"], "--corpus"),
])
def test_mistakes_are_one_line(tokenizer_dir, capsys, argv, named):
    argv = [a.replace("{run}", str(tokenizer_dir)) for a in argv]
    assert main(["tokenize", *argv]) in (1, 2)
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and named in err


def test_hf_folder_pieces(tokenizer_dir, tmp_path, capsys):
    from llm_jax.data.hf_tokenizer import HFTokenizer
    from llm_jax.data.hf_tokenizer_export import write_hf_tokenizer
    from tests.helpers import require

    require("tokenizers")
    tok = Tokenizer.load(tokenizer_dir / "tokenizer.model")
    write_hf_tokenizer(tok, tmp_path)
    (tmp_path / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": tok.bos_id, "eos_token_id": tok.eos_id, "pad_token_id": tok.pad_id}))
    out = _json(capsys, "--hf", str(tmp_path), TEXT)
    hf = HFTokenizer(tmp_path)
    ids = hf.encode(TEXT)
    assert [t["id"] for t in out["tokens"]] == ids == tok.encode(TEXT)
    assert [t["piece"] for t in out["tokens"]] == [hf._tok.id_to_token(i) for i in ids]
