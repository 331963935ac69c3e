"""A Hugging Face folder's own tokenizer (`tokenizer.json`), with our tokenizer's interface.

Special ids come from `config.json`/`generation_config.json` as in transformers. Needs the
`[hf]` extra."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from llm_jax.data.errors import DataError

HF_TOKENIZER_FILE = "tokenizer.json"
_BYTE_PIECE = re.compile(r"<0x[0-9A-Fa-f]{2}>")


def _special_ids(folder: Path) -> dict[str, list[int]]:
    """bos/eos/pad ids from config.json, overridden by generation_config.json (which is where
    chat models list several end-of-turn ids)."""
    ids: dict[str, list[int]] = {}
    for name in ("config.json", "generation_config.json"):
        path = folder / name
        if not path.is_file():
            continue
        try:
            config = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
        for key in ("bos", "eos", "pad"):
            value = config.get(f"{key}_token_id")
            if value is not None:
                ids[key] = [int(v) for v in (value if isinstance(value, list) else [value])]
    return ids


class HFTokenizer:
    """`tokenizer.json` + the folder's special ids, with our `Tokenizer`'s interface."""

    def __init__(self, folder: str | Path):
        folder = Path(folder)
        path = folder / HF_TOKENIZER_FILE
        if not path.is_file():
            raise DataError(f"{path}: tokenizer file not found")
        try:
            from tokenizers import Tokenizer as FastTokenizer
        except ImportError:
            raise DataError(f"{path}: reading it needs the `tokenizers` package "
                            "(pip install 'llm-jax[hf]')") from None
        try:
            self._tok = FastTokenizer.from_file(str(path))
        except Exception as e:  # the library raises a bare Exception on a malformed file
            raise DataError(f"{path}: not a readable tokenizer file ({e})") from None
        self.model_path = path
        special = _special_ids(folder)
        if "eos" not in special:
            raise DataError(f"{folder}: no eos_token_id in config.json or "
                            "generation_config.json; cannot tell where a sample ends")
        self._eos = special["eos"]
        self._bos = special.get("bos", self._eos)[0]  # GPT-2 uses <|endoftext|> for both
        self._pad = special.get("pad", self._eos)[0]

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size(with_added_tokens=True)

    @property
    def pad_id(self) -> int:
        return self._pad

    @property
    def bos_id(self) -> int:
        return self._bos

    @property
    def eos_id(self) -> int:
        return self._eos[0]

    @property
    def stop_ids(self) -> tuple[int, ...]:
        """Every id that ends a sample (chat models often have several)."""
        return tuple(self._eos)

    def encode(self, text: str) -> list[int]:
        """Token ids of `text` without the BOS/EOS the tokenizer's template would add."""
        return self._tok.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Sequence[int]) -> str:
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=True)

    def piece(self, token_id: int) -> str:
        """The vocabulary's own spelling of a token ("Ġthe" in byte-level BPE)."""
        return self._tok.id_to_token(int(token_id)) or ""

    def token_byte_lengths(self) -> np.ndarray:
        """UTF-8 bytes each id stands for (0 for special tokens), for bits per byte."""
        byte_level = type(self._tok.decoder).__name__ == "ByteLevel"
        special = {t.content for t in self._tok.get_added_tokens_decoder().values()
                   if t.special}
        lengths = np.zeros(self.vocab_size, np.int32)
        for token, i in self._tok.get_vocab(with_added_tokens=True).items():
            if token in special or i >= self.vocab_size:
                continue
            if byte_level:
                lengths[i] = len(token)
            elif _BYTE_PIECE.fullmatch(token):
                lengths[i] = 1
            else:
                lengths[i] = len(token.replace("\u2581", " ").encode())
        return lengths
