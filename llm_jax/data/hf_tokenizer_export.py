"""Write our sentencepiece tokenizer as Hugging Face files with the same ids as `Tokenizer.encode`.

    write_hf_tokenizer(tokenizer, "exported/", model_max_length=1024)

Merges are read off the vocabulary (each split of a piece into two, ranked by the piece's
score, as sentencepiece merges); digits never merge, "\\n" is an added token, and
`split_special_tokens` keeps raw text from forging special tokens."""

from __future__ import annotations

import json
from pathlib import Path

from sentencepiece import sentencepiece_model_pb2 as sp_model

from llm_jax.data.errors import DataError
from llm_jax.data.tokenizer import BOS, EOS, PAD, SPECIAL_TOKENS, UNK, Tokenizer

HF_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
_Piece = sp_model.ModelProto.SentencePiece


def _checked_proto(tokenizer: Tokenizer) -> sp_model.ModelProto:
    """The model's proto, refusing settings this translation does not reproduce."""
    proto = sp_model.ModelProto()
    proto.ParseFromString(tokenizer.sp.serialized_model_proto())
    trainer, normalizer = proto.trainer_spec, proto.normalizer_spec
    expected = {"model_type=BPE": trainer.model_type == trainer.BPE,
                "byte_fallback": trainer.byte_fallback,
                "add_dummy_prefix=false": not normalizer.add_dummy_prefix,
                "remove_extra_whitespaces=false": not normalizer.remove_extra_whitespaces,
                "identity normalization": normalizer.name == "identity",
                "treat_whitespace_as_suffix=false": not trainer.treat_whitespace_as_suffix}
    missing = [name for name, ok in expected.items() if not ok]
    if missing:
        raise DataError(f"{tokenizer.model_path}: cannot export as a Hugging Face tokenizer "
                        f"(needs {', '.join(missing)})")
    return proto


def _bpe_model(proto: sp_model.ModelProto) -> dict:
    vocab = {p.piece: i for i, p in enumerate(proto.pieces)}
    normal = {p.piece: (p.score, i) for i, p in enumerate(proto.pieces)
              if p.type == _Piece.NORMAL}
    ranked = []
    for piece, (score, index) in normal.items():
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in normal and right in normal:
                ranked.append((-score, index, vocab[left], vocab[right], left, right))
    ranked.sort()
    return {"type": "BPE", "dropout": None, "unk_token": proto.pieces[
                proto.trainer_spec.unk_id].piece,
            "continuing_subword_prefix": None, "end_of_word_suffix": None, "fuse_unk": True,
            "byte_fallback": True, "ignore_merges": False, "vocab": vocab,
            "merges": [[left, right] for *_, left, right in ranked]}


def _added_tokens(proto: sp_model.ModelProto) -> list[dict]:
    kinds = {_Piece.CONTROL: True, _Piece.UNKNOWN: True, _Piece.USER_DEFINED: False}
    return [{"id": i, "content": p.piece, "single_word": False, "lstrip": False,
             "rstrip": False, "normalized": False, "special": kinds[p.type]}
            for i, p in enumerate(proto.pieces) if p.type in kinds]


def tokenizer_json(tokenizer: Tokenizer) -> dict:
    """The `tokenizer.json` document (tokenizers' serialization format)."""
    proto = _checked_proto(tokenizer)
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": _added_tokens(proto),
        "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"},
        "pre_tokenizer": None,
        "post_processor": None,  # encode adds no BOS/EOS, as ours does not
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"}]},
        "model": _bpe_model(proto)}


def write_hf_tokenizer(tokenizer: Tokenizer, folder: str | Path, *,
                       model_max_length: int | None = None) -> list[Path]:
    """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json into `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    extra = [t for t in SPECIAL_TOKENS if t not in (PAD, UNK, BOS, EOS)]
    special = {"bos_token": BOS, "eos_token": EOS, "pad_token": PAD, "unk_token": UNK,
               "additional_special_tokens": extra}
    config = {"tokenizer_class": "PreTrainedTokenizerFast", **special,
              "add_bos_token": False, "add_eos_token": False,
              "clean_up_tokenization_spaces": False, "split_special_tokens": True,
              "model_max_length": model_max_length or 1 << 30}
    documents = {"tokenizer.json": tokenizer_json(tokenizer), "tokenizer_config.json": config,
                 "special_tokens_map.json": special}
    paths = []
    for name in HF_TOKENIZER_FILES:
        path = folder / name
        path.write_text(json.dumps(documents[name], ensure_ascii=False, indent=1) + "\n",
                        encoding="utf-8")
        paths.append(path)
    return paths
