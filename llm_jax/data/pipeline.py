"""grain pipelines: documents → shuffled, tokenized, packed, batched rows.

Each document becomes `<|bos|> text <|eos|>`; `inputs` are its tokens but the last and
`targets` its tokens but the first. Concat-then-split packing fills every row of `seq_len`
with consecutive documents and emits `segment_ids` (1, 2, ... per document in the row, 0 for
padding) and `positions` (restarting at 0 in each document, continuing where a long document
spills into the next row), so attention never crosses documents.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

import grain
import numpy as np

if TYPE_CHECKING:
    from llm_jax.data.tokenizer import Tokenizer


def _tokenize_fn(tokenizer: Tokenizer):
    def tokenize(text: str) -> dict[str, np.ndarray]:
        ids = np.asarray([tokenizer.bos_id, *tokenizer.encode(text), tokenizer.eos_id], np.int32)
        return {"inputs": ids[:-1], "targets": ids[1:]}

    return tokenize


def _rename_packed(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {
        "inputs": batch["inputs"],
        "targets": batch["targets"],
        "segment_ids": batch["inputs_segment_ids"].astype(np.int32),
        "positions": batch["inputs_positions"].astype(np.int32),
    }


def _packed(dataset: grain.IterDataset, seq_len: int) -> grain.IterDataset:
    return grain.experimental.ConcatThenSplitIterDataset(
        dataset, length_struct={"inputs": seq_len, "targets": seq_len})


def train_dataset(documents: Sequence[str], tokenizer: Tokenizer, *, seq_len: int,
                  batch_size: int, seed: int, shard_index: int = 0, shard_count: int = 1,
                  row_shuffle_window: int = 1024) -> grain.IterDataset:
    """Endless packed training batches for this host: `batch_size` rows of `seq_len`.

    Documents are split between hosts first (each host reads only its share), then shuffled
    with `seed`, freshly each epoch. Packing emits consecutive rows of the same document, so
    packed rows are shuffled again within a window of `row_shuffle_window` rows: otherwise a
    batch would hold one long document and its gradient would be needlessly noisy. Call
    `iter()` on the result; the iterator's `get_state()/set_state()` resume exactly and are
    saved in checkpoints.
    """
    if not documents:
        raise ValueError("no training documents")
    ds = grain.MapDataset.source(list(documents))[shard_index::shard_count]
    ds = ds.seed(seed).shuffle().repeat(None).map(_tokenize_fn(tokenizer))
    ds = _packed(ds.to_iter_dataset(), seq_len)
    if row_shuffle_window > 1:
        ds = grain.experimental.WindowShuffleIterDataset(ds, window_size=row_shuffle_window,
                                                         seed=seed)
    return ds.batch(batch_size, drop_remainder=True).map(_rename_packed)


class CheckpointableIterator:
    """A grain iterator whose state survives the JSON round trip of a checkpoint.

    grain's concat-then-split packer keeps `(start, end)` tuples in its state and compares them
    to a tuple on restore; JSON hands them back as lists, which silently mis-restores the data
    position. This wrapper turns those lists back into tuples.
    """

    def __init__(self, iterator):
        self._iterator = iterator

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._iterator)

    # grain's checkpoint handler stores a non-grain iterator's state as the bytes it returns.
    def get_state(self) -> bytes:
        return json.dumps(self._iterator.get_state()).encode()

    def set_state(self, state: bytes) -> None:
        self._iterator.set_state(_slices_as_tuples(json.loads(state)))

    def start_prefetch(self) -> None:
        """Called by grain's checkpoint handler after a restore; nothing is prefetched."""


def _slices_as_tuples(state):
    if isinstance(state, dict):
        return {k: ({f: tuple(v) for f, v in value.items()} if k == "remainder_slices"
                    else _slices_as_tuples(value)) for k, value in state.items()}
    return state


def train_iterator(documents: Sequence[str], tokenizer: Tokenizer, **kwargs
                   ) -> CheckpointableIterator:
    """`iter(train_dataset(...))`, ready to be saved in and restored from checkpoints."""
    return CheckpointableIterator(iter(train_dataset(documents, tokenizer, **kwargs)))


def eval_batches(documents: Sequence[str], tokenizer: Tokenizer, *, seq_len: int,
                 batch_size: int, max_batches: int) -> list[dict[str, np.ndarray]]:
    """A fixed list of packed validation batches (no shuffle), the same at every evaluation."""
    ds = grain.MapDataset.source(list(documents)).map(_tokenize_fn(tokenizer))
    ds = _packed(ds.to_iter_dataset(), seq_len).map(_pad_row(seq_len))
    ds = ds.batch(batch_size, drop_remainder=False).map(_rename_packed)
    batches = []
    for batch in ds:
        if len(batches) == max_batches:
            break
        batches.append(_pad_batch(batch, batch_size))
    return batches


def _pad_row(seq_len: int):
    # The last packed row can be short; pad it (segment 0 = ignored by the loss).
    def pad(row):
        return {k: np.pad(v, (0, seq_len - len(v))) for k, v in row.items()}
    return pad


def _pad_batch(batch: dict[str, np.ndarray], batch_size: int) -> dict[str, np.ndarray]:
    missing = batch_size - len(batch["inputs"])
    if missing <= 0:
        return batch
    return {k: np.pad(v, ((0, missing), (0, 0))) for k, v in batch.items()}
