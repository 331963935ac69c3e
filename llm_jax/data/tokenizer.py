"""The project's tokenizer: sentencepiece BPE with byte fallback, split digits, special tokens.

Special tokens are control symbols: raw text can never produce them."""

from __future__ import annotations

import io
import os
import re
import string
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import sentencepiece as spm

from llm_jax.data.errors import DataError
from llm_jax.runs import TOKENIZER_FILE  # noqa: F401 - re-exported: a run's tokenizer file

PAD, UNK, BOS, EOS = "<|pad|>", "<unk>", "<|bos|>", "<|eos|>"
CHAT_TOKENS = ("<|im_start|>", "<|im_sep|>", "<|im_end|>")
TOOL_TOKENS = ("<|python_start|>", "<|python_end|>", "<|output_start|>", "<|output_end|>")
SPECIAL_TOKENS = (PAD, UNK, BOS, EOS, *CHAT_TOKENS, *TOOL_TOKENS)


def _training_lines(texts: Iterable[str], max_sentences: int) -> Iterator[str]:
    """Paragraph-sized training sentences (sentencepiece trains on lines, not documents)."""
    count = 0
    for text in texts:
        for para in text.split("\n\n"):
            para = para.strip("\n")
            if not para.strip():
                continue
            yield para[:4096]
            count += 1
            if count >= max_sentences:
                return


def _train_bpe(lines: list[str], model: io.BytesIO, vocab_size: int) -> None:
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, model_type="bpe",
        vocab_size=vocab_size, byte_fallback=True, split_digits=True,
        add_dummy_prefix=False, normalization_rule_name="identity",
        remove_extra_whitespaces=False, allow_whitespace_only_pieces=True,
        split_by_whitespace=True, character_coverage=0.9995,
        max_sentence_length=1 << 16, train_extremely_large_corpus=False,
        pad_id=0, unk_id=1, bos_id=2, eos_id=3,
        pad_piece=PAD, unk_piece=UNK, bos_piece=BOS, eos_piece=EOS,
        control_symbols=list(CHAT_TOKENS + TOOL_TOKENS),
        user_defined_symbols=["\n"],  # keep newlines as their own piece, not bytes
        num_threads=os.cpu_count() or 1, seed_sentencepiece_size=1_000_000,
        # Digits and ASCII always get their own pieces, even when rare in the training
        # text: later stages do arithmetic and code.
        required_chars=string.digits + string.ascii_letters + string.punctuation,
        hard_vocab_limit=True, minloglevel=2)


def _training_problem(error: RuntimeError, vocab_size: int, corpus_name: str) -> DataError:
    """sentencepiece's training failure as one line naming the setting to change."""
    message = str(error)
    if "Vocabulary size too high" in message:
        most = re.search(r"<= (\d+)", message)
        allowed = f" (it allows at most {most.group(1)})" if most else ""
        return DataError(f"data.vocab_size={vocab_size} is too large for {corpus_name}"
                         f"{allowed}: lower data.vocab_size or give more text")
    last = message.strip().splitlines()[-1] if message.strip() else type(error).__name__
    return DataError(f"training the tokenizer on {corpus_name} failed: {last}")


class Tokenizer:
    """A thin, typed wrapper over a sentencepiece model."""

    def __init__(self, processor: spm.SentencePieceProcessor, model_path: Path):
        self.sp = processor
        self.model_path = model_path
        self._special = {t: processor.piece_to_id(t) for t in SPECIAL_TOKENS}

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, model_path: str | Path, *,
              max_sentences: int = 2_000_000, corpus_name: str = "the training text"
              ) -> Tokenizer:
        """Train a deterministic BPE model on `texts`, save it to `model_path` and load it."""
        model_path = Path(model_path)
        model = io.BytesIO()
        lines = list(_training_lines(texts, max_sentences))
        if not lines:
            raise DataError(f"{model_path}: no text to train the tokenizer on")
        try:
            _train_bpe(lines, model, vocab_size)
        except RuntimeError as e:
            raise _training_problem(e, vocab_size, corpus_name) from None
        model_path.parent.mkdir(parents=True, exist_ok=True)
        model_path.write_bytes(model.getvalue())
        return cls.load(model_path)

    @classmethod
    def load(cls, model_path: str | Path) -> Tokenizer:
        model_path = Path(model_path)
        if not model_path.is_file():
            raise DataError(f"{model_path}: tokenizer model not found")
        processor = spm.SentencePieceProcessor()
        try:
            processor.load(str(model_path))
        except (OSError, RuntimeError) as e:
            raise DataError(f"{model_path}: not a readable sentencepiece model ({e})") from None
        return cls(processor, model_path)

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    @property
    def pad_id(self) -> int:
        return self.sp.pad_id()

    @property
    def unk_id(self) -> int:
        return self.sp.unk_id()

    @property
    def bos_id(self) -> int:
        return self.sp.bos_id()

    @property
    def eos_id(self) -> int:
        return self.sp.eos_id()

    @property
    def stop_ids(self) -> tuple[int, ...]:
        """Ids that end a sample."""
        return (self.eos_id,)

    def special_id(self, token: str) -> int:
        if token not in self._special:
            raise KeyError(f"{token!r} is not a special token; known: {', '.join(SPECIAL_TOKENS)}")
        return self._special[token]

    def encode(self, text: str) -> list[int]:
        """Token ids of `text` (no BOS/EOS added; never a special id)."""
        return self.sp.encode(text)

    def decode(self, ids: Sequence[int]) -> str:
        return self.sp.decode([int(i) for i in ids])

    def piece(self, token_id: int) -> str:
        """The vocabulary's own spelling of a token ("▁the", "<0xE2>", "<|im_start|>")."""
        return self.sp.id_to_piece(int(token_id))

    def token_byte_lengths(self) -> np.ndarray:
        """UTF-8 bytes each id decodes to (0 for special tokens), for bits-per-byte."""
        lengths = np.zeros(self.vocab_size, np.int32)
        for i in range(self.vocab_size):
            if self.sp.is_control(i) or self.sp.is_unknown(i):
                continue
            if self.sp.is_byte(i):
                lengths[i] = 1
            else:
                lengths[i] = len(self.sp.id_to_piece(i).replace("\u2581", " ").encode())
        return lengths
