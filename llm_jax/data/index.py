"""Random access to a corpus: records by number, Parquet read lazily by row group.

Text/JSONL are read when the index is built; Parquet keeps only row-group sizes and caches a
few row groups. `BlockShuffle` shuffles blocks (row groups), then records within windows of
blocks, so a reader touches a handful of row groups at a time."""

from __future__ import annotations

import bisect
import collections
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grain
import numpy as np

from llm_jax.data.records import (
    BadRecordStats,
    Validator,
    check_record,
    expand_paths,
    file_kind,
    file_records,
    parquet_file,
    read_row_group,
)


class _Memory:
    """Records already read and validated, one block each."""

    def __init__(self, values: list):
        self.values = values
        self.block_sizes = np.ones(len(values), np.int64)

    def __len__(self) -> int:
        return len(self.values)

    def get(self, i: int) -> Any:
        return self.values[i]


class _Parquet:
    """One Parquet file, read a row group at a time through the index's cache."""

    def __init__(self, path: Path, columns: Sequence[str] | None, owner: RecordIndex):
        meta = parquet_file(path, columns).metadata
        self.path, self.columns, self.owner = path, columns, owner
        self.block_sizes = np.array([meta.row_group(g).num_rows
                                     for g in range(meta.num_row_groups)], np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.block_sizes)])

    def __len__(self) -> int:
        return int(self.starts[-1])

    def get(self, i: int) -> Any:
        group = int(np.searchsorted(self.starts, i, side="right")) - 1
        rows = self.owner.row_group(self, group)
        record = rows[i - int(self.starts[group])]
        return check_record(f"{self.path}: row {i}", record, self.owner.validate,
                            skip_bad=self.owner.skip_bad, stats=self.owner.stats)


class RecordIndex:
    """Every record of a corpus by number; see the module docstring."""

    def __init__(self, validate: Validator | None = None, *, skip_bad: bool = False,
                 stats: BadRecordStats | None = None, cached_row_groups: int = 8):
        self.validate, self.skip_bad, self.stats = validate, skip_bad, stats
        self._parts: list[_Memory | _Parquet] = []
        self._starts = [0]
        self._cache: collections.OrderedDict = collections.OrderedDict()
        self._cache_size = cached_row_groups
        self._lock = threading.Lock()  # grain may read from prefetch threads

    def _add(self, part: _Memory | _Parquet) -> None:
        if len(part):
            self._parts.append(part)
            self._starts.append(self._starts[-1] + len(part))

    def __len__(self) -> int:
        return self._starts[-1]

    def __getitem__(self, i: int) -> Any:
        i = int(i)
        if not 0 <= i < len(self):
            raise IndexError(f"record {i} of {len(self)}")
        p = bisect.bisect_right(self._starts, i) - 1
        return self._parts[p].get(i - self._starts[p])

    def __repr__(self) -> str:
        return f"RecordIndex({len(self)} records in {len(self._parts)} parts)"

    @property
    def block_sizes(self) -> np.ndarray:
        """Records per block, in index order (they sum to `len(self)`)."""
        if not self._parts:
            return np.zeros(0, np.int64)
        return np.concatenate([p.block_sizes for p in self._parts])

    def row_group(self, part: _Parquet, group: int) -> list[dict]:
        key = (id(part), group)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        rows = read_row_group(_open(part.path), part.path, group, part.columns).to_pylist()
        with self._lock:
            self._cache[key] = rows
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return rows


def _open(path: Path):
    import pyarrow.parquet as pq

    return pq.ParquetFile(path)  # already checked readable when the index was built


def build_index(patterns: Sequence[str], *, validate: Validator | None = None,
                skip_bad: bool = False, stats: BadRecordStats | None = None,
                columns: Sequence[str] | None = None, cached_row_groups: int = 8
                ) -> RecordIndex:
    """An index over every file the patterns name; `columns` limits what Parquet rows hold."""
    index = RecordIndex(validate, skip_bad=skip_bad, stats=stats,
                        cached_row_groups=cached_row_groups)
    for path in expand_paths(patterns):
        if file_kind(path) == "parquet":
            index._add(_Parquet(path, columns, index))
            continue
        values = []
        for where, record in file_records(path, skip_bad=skip_bad, stats=stats):
            value = check_record(where, record, validate, skip_bad=skip_bad, stats=stats)
            if value is not None:
                values.append(value)
        index._add(_Memory(values))
    return index


def memory_index(values: Sequence[Any]) -> RecordIndex:
    """An index over records already in memory (a list of documents, HF records)."""
    index = RecordIndex()
    index._add(_Memory(list(values)))
    return index


class IndexView:
    """Records `[start, stop)` of an index, with the same interface (e.g. a held-out tail)."""

    def __init__(self, base: RecordIndex | IndexView, start: int, stop: int):
        if not 0 <= start <= stop <= len(base):
            raise ValueError(f"view [{start}, {stop}) outside {len(base)} records")
        self.base, self.start, self.stop = base, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, i: int) -> Any:
        if not 0 <= i < len(self):
            raise IndexError(f"record {i} of {len(self)}")
        return self.base[self.start + int(i)]

    @property
    def block_sizes(self) -> np.ndarray:
        ends = np.cumsum(self.base.block_sizes)
        starts = ends - self.base.block_sizes
        lo, hi = np.maximum(starts, self.start), np.minimum(ends, self.stop)
        sizes = hi - lo
        return sizes[sizes > 0]


class ConcatIndex:
    """Several indexes read as one, in order: a corpus with generated documents after it."""

    def __init__(self, *parts: RecordIndex | IndexView | ConcatIndex):
        self.parts = [p for p in parts if len(p)]
        self._starts = np.cumsum([0, *(len(p) for p in self.parts)])

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getitem__(self, i: int) -> Any:
        i = int(i)
        if not 0 <= i < len(self):
            raise IndexError(f"record {i} of {len(self)}")
        p = int(np.searchsorted(self._starts, i, side="right")) - 1
        return self.parts[p][i - int(self._starts[p])]

    @property
    def block_sizes(self) -> np.ndarray:
        return np.concatenate([np.zeros(0, np.int64), *(p.block_sizes for p in self.parts)])


def split_tail(index: RecordIndex | IndexView, n: int) -> tuple[IndexView, IndexView]:
    """(all but the last `n` records, the last `n` records)."""
    return IndexView(index, 0, len(index) - n), IndexView(index, len(index) - n, len(index))


class BlockShuffle(grain.MapDataset):
    """An endless, seeded, epoch-by-epoch order over `parent`, shuffled block-locally.

    Any position is computed directly, so slicing (`ds[i::n]`) and resuming cost nothing."""

    def __init__(self, parent: grain.MapDataset, block_sizes: np.ndarray, *, seed: int,
                 window_blocks: int = 8):
        super().__init__(parent)
        self._sizes = np.asarray(block_sizes, np.int64)
        self._n = int(self._sizes.sum())
        if self._n != len(parent) or self._n == 0:
            raise ValueError(f"block sizes cover {self._n} records, the dataset has "
                             f"{len(parent)}")
        self._starts = np.cumsum(self._sizes) - self._sizes
        self._seed, self._window = seed, max(1, window_blocks)
        self._epochs: collections.OrderedDict = collections.OrderedDict()
        self._windows: collections.OrderedDict = collections.OrderedDict()

    def __len__(self) -> int:
        return sys.maxsize

    def __str__(self) -> str:
        return f"BlockShuffle(seed={self._seed}, window_blocks={self._window})"

    def _epoch(self, epoch: int):
        if epoch not in self._epochs:
            perm = np.random.default_rng([self._seed, epoch]).permutation(len(self._sizes))
            ends = np.cumsum(self._sizes[perm])
            window_ends = ends[self._window - 1::self._window]
            if len(window_ends) == 0 or window_ends[-1] != ends[-1]:
                window_ends = np.append(window_ends, ends[-1])
            self._epochs[epoch] = (self._starts[perm], ends, window_ends)
            while len(self._epochs) > 2:
                self._epochs.popitem(last=False)
        return self._epochs[epoch]

    def _window_perm(self, epoch: int, window: int, size: int) -> np.ndarray:
        key = (epoch, window)
        if key not in self._windows:
            rng = np.random.default_rng([self._seed, epoch, window + 1])
            self._windows[key] = rng.permutation(size)
            while len(self._windows) > 64:
                self._windows.popitem(last=False)
        return self._windows[key]

    def record_number(self, position: int) -> int:
        """The parent record at `position` of the endless order."""
        epoch, p = divmod(int(position), self._n)
        block_starts, ends, window_ends = self._epoch(epoch)
        w = int(np.searchsorted(window_ends, p, side="right"))
        lo = int(window_ends[w - 1]) if w else 0
        p = lo + int(self._window_perm(epoch, w, int(window_ends[w]) - lo)[p - lo])
        b = int(np.searchsorted(ends, p, side="right"))
        return int(block_starts[b]) + p - (int(ends[b - 1]) if b else 0)

    def __getitem__(self, position):
        if isinstance(position, slice):
            return self.slice(position)
        return self._parent[self.record_number(position)]
