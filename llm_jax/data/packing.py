"""Packing tokenized examples into fixed-length rows, per-token fields kept aligned.

Rows carry `segment_ids` (0 = padding) and `positions` (restarting per example).
`split=True` (pretraining) concatenates and cuts; `split=False` (SFT, preferences) keeps each
example whole in one row (first-fit), cutting only those longer than `seq_len`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import grain
import numpy as np

Example = dict[str, np.ndarray]


def document_example(bos_id: int, eos_id: int, encode: Callable[[str], list[int]]
                     ) -> Callable[[str], Example]:
    """text -> `<|bos|> text <|eos|>` as an example: inputs all but the last token, targets
    all but the first."""

    def example(text: str) -> Example:
        ids = np.asarray([bos_id, *encode(text), eos_id], np.int32)
        return {"inputs": ids[:-1], "targets": ids[1:]}

    return example


def _truncate(seq_len: int):
    def cut(example: Example) -> Example:
        return {k: v[:seq_len] for k, v in example.items()}
    return cut


def _rename(fields: Iterable[str]):
    fields = tuple(fields)

    def rename(row: Mapping[str, np.ndarray]) -> Example:
        out = {k: np.asarray(row[k], np.int32) for k in fields}
        out["segment_ids"] = np.asarray(row["inputs_segment_ids"], np.int32)
        out["positions"] = np.asarray(row["inputs_positions"], np.int32)
        return out

    return rename


def pack(examples: grain.IterDataset, seq_len: int, fields: Iterable[str] = ("inputs",
         "targets"), *, split: bool = True, num_packing_bins: int = 4) -> grain.IterDataset:
    """Rows of `seq_len` from `examples` (see the module docstring); `fields` names every
    per-token field the examples carry (`inputs` and `targets` at least)."""
    fields = tuple(fields)
    lengths = {k: seq_len for k in fields}
    if split:
        rows = grain.experimental.ConcatThenSplitIterDataset(examples, length_struct=lengths)
    else:
        rows = grain.experimental.FirstFitPackIterDataset(
            examples.map(_truncate(seq_len)), length_struct=lengths,
            num_packing_bins=num_packing_bins, shuffle_bins=False)
    return rows.map(_rename(fields))


def pad_row(row: Example, seq_len: int) -> Example:
    """A short last row padded to `seq_len` (segment 0 marks padding: no loss there)."""
    return {k: np.pad(v, (0, seq_len - len(v))) for k, v in row.items()}


def stack_rows(rows: list[Example], batch_size: int | None = None) -> Example:
    """A batch from rows; fully padded rows fill it up to `batch_size`."""
    batch = {k: np.stack([r[k] for r in rows]) for k in rows[0]}
    missing = (batch_size or len(rows)) - len(rows)
    if missing > 0:
        batch = {k: np.pad(v, ((0, missing), (0, 0))) for k, v in batch.items()}
    return batch
