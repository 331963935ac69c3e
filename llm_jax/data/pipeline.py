"""grain pipelines: a corpus → seeded order → tokenized examples → packed rows → batches.

    it = train_iterator(index, tokenizer, seq_len=256, batch_size=64, seed=0,
                        host_index=jax.process_index(), host_count=jax.process_count())

Batches are the same for any host count (see `global_batches.py`); documents are
`<|bos|> text <|eos|>`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import grain
import numpy as np

from llm_jax.data.global_batches import GlobalBatchIterator, host_rows
from llm_jax.data.index import BlockShuffle, memory_index
from llm_jax.data.packing import Example, document_example, pack, pad_row, stack_rows

if TYPE_CHECKING:
    from llm_jax.data.tokenizer import Tokenizer


def _as_corpus(corpus: Any):
    if not hasattr(corpus, "block_sizes"):  # a plain list: one block per record
        corpus = memory_index(list(corpus))
    if len(corpus) == 0:
        raise ValueError("no training records")
    return corpus


def _not_none(value: Any) -> bool:
    return value is not None


# A stream reads one record at a time, on demand: a thread pool per stream (grain's default)
# would start `batch_size` pools of threads and read hundreds of records ahead in each.
SYNCHRONOUS = grain.ReadOptions(num_threads=0, prefetch_buffer_size=0)


def packed_batches(corpus: Any, to_example: Callable[[Any], Example | None], *, seq_len: int,
                   batch_size: int, seed: int, fields: Iterable[str] = ("inputs", "targets"),
                   split: bool = True, host_index: int = 0, host_count: int = 1,
                   window_blocks: int = 8, num_packing_bins: int = 4) -> GlobalBatchIterator:
    """Endless packed batches: this host's rows of global batches of `batch_size`.

    `to_example(record)` makes an example (`None` drops it); `fields` names its per-token fields."""
    corpus = _as_corpus(corpus)
    fields = tuple(fields)
    order = BlockShuffle(grain.MapDataset.source(corpus), corpus.block_sizes, seed=seed,
                         window_blocks=window_blocks)

    def stream(row: int) -> grain.IterDataset:
        examples = order[row::batch_size].filter(_not_none).map(to_example).filter(_not_none)
        return pack(examples.to_iter_dataset(SYNCHRONOUS), seq_len, fields, split=split,
                    num_packing_bins=num_packing_bins)

    return GlobalBatchIterator(
        stream, global_rows=batch_size, host_index=host_index, host_count=host_count,
        fingerprint={"seed": seed, "seq_len": seq_len, "records": len(corpus),
                     "split": split, "fields": list(fields)})


def tokenize_fn(tokenizer: Tokenizer) -> Callable[[str], Example]:
    """text -> `<|bos|> text <|eos|>` example (inputs, targets)."""
    return document_example(tokenizer.bos_id, tokenizer.eos_id, tokenizer.encode)


def train_iterator(documents: Any, tokenizer: Tokenizer, *, seq_len: int, batch_size: int,
                   seed: int, host_index: int = 0, host_count: int = 1,
                   window_blocks: int = 8, shard_index: int | None = None,
                   shard_count: int | None = None) -> GlobalBatchIterator:
    """Pretraining document batches: `batch_size` is global (legacy `shard_*` form: per host)."""
    if shard_count is not None:
        host_index, host_count = shard_index or 0, shard_count
        batch_size *= shard_count
    return packed_batches(documents, tokenize_fn(tokenizer), seq_len=seq_len,
                          batch_size=batch_size, seed=seed, host_index=host_index,
                          host_count=host_count, window_blocks=window_blocks)


def eval_batches(documents: Any, tokenizer: Tokenizer | None = None, *, seq_len: int,
                 batch_size: int, max_batches: int, host_index: int = 0, host_count: int = 1,
                 to_example: Callable[[Any], Example | None] | None = None,
                 fields: Iterable[str] = ("inputs", "targets")) -> list[dict[str, np.ndarray]]:
    """This host's rows of fixed global validation batches, tail padded with segment 0."""
    rows = host_rows(batch_size, host_index, host_count)
    to_example = to_example or tokenize_fn(tokenizer)
    ds = grain.MapDataset.source(_as_corpus(documents)).filter(_not_none).map(to_example)
    packed = pack(ds.filter(_not_none).to_iter_dataset(SYNCHRONOUS), seq_len, tuple(fields))
    batches, pending = [], []
    for row in packed:
        pending.append(pad_row(row, seq_len))
        if len(pending) == batch_size:
            batches.append(stack_rows(pending[rows.start:rows.stop], len(rows)))
            pending = []
            if len(batches) == max_batches:
                return batches
    if pending:
        mine = pending[rows.start:rows.stop] or [_empty_row(pending[0])]
        batches.append(stack_rows(mine, len(rows)))
    return batches


def _empty_row(like: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.zeros_like(v) for k, v in like.items()}


def train_documents_sample(documents: Sequence[Any], max_chars: int, *, seed: int = 0,
                           window_blocks: int = 8) -> Iterable[str]:
    """Tokenizer-training text: the first `max_chars` of the whole corpus' seeded order."""
    corpus = _as_corpus(documents)
    order = BlockShuffle(grain.MapDataset.source(corpus), corpus.block_sizes, seed=seed,
                         window_blocks=window_blocks)
    total = 0
    for position in range(len(corpus)):
        doc = order[position]
        if doc is None:
            continue
        yield doc
        total += len(doc)
        if total >= max_chars:
            return
