"""The record index: eager text/JSONL, lazy Parquet by row group, block-local seeded order."""

import grain
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llm_jax.data.errors import DataError
from llm_jax.data.index import BlockShuffle, build_index, memory_index, split_tail
from llm_jax.data.records import text_field


def _shards(tmp_path, files=3, groups=4, rows=5):
    for f in range(files):
        texts = [f"f{f} g{g} r{r}" for g in range(groups) for r in range(rows)]
        pq.write_table(pa.table({"text": texts, "score": list(range(len(texts)))}),
                       tmp_path / f"shard{f}.parquet", row_group_size=rows)
    return [f"f{f} g{g} r{r}" for f in range(files) for g in range(groups) for r in range(rows)]


def test_parquet_is_indexed_by_row_group_and_read_on_demand(tmp_path, monkeypatch):
    expected = _shards(tmp_path)
    (tmp_path / "notes.txt").write_text("a text file")
    index = build_index([str(tmp_path)], validate=text_field(), columns=("text",),
                        cached_row_groups=2)
    assert len(index) == 61 and list(index.block_sizes) == [1] + [5] * 12
    reads = []
    original = pq.ParquetFile.read_row_group

    def counting(self, i, *args, **kwargs):
        reads.append(i)
        return original(self, i, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", counting)
    assert index[0] == "a text file" and not reads  # eager files never touch Parquet
    assert [index[i] for i in range(1, 11)] == expected[:10]
    assert reads == [0, 1]  # one read per row group, not per row
    assert index[60] == expected[-1] and index[1] == expected[0]
    assert len(reads) == 4  # group 0 was evicted by the 2-group cache
    with pytest.raises(IndexError):
        index[61]


def test_lazy_rows_are_validated_on_access(tmp_path):
    pq.write_table(pa.table({"text": ["good", None, "also good"], "body": [1, 2, 3]}),
                   tmp_path / "d.parquet")
    index = build_index([str(tmp_path)], validate=text_field("body"))
    with pytest.raises(DataError, match=r"d.parquet: row 1: field 'body' is int, not text"):
        index[1]
    with pytest.raises(DataError, match=r"d.parquet: no column 'title'"):
        build_index([str(tmp_path)], columns=("title",))
    with pytest.raises(DataError, match=r"d.parquet: row 1: field 'text' is null"):
        build_index([str(tmp_path)], validate=text_field(), columns=("text",))[1]


def test_block_shuffle_is_a_seeded_permutation_per_epoch():
    n = 50
    ds = BlockShuffle(grain.MapDataset.source(list(range(n))), np.ones(n, np.int64), seed=3)
    epoch0, epoch1 = [ds[i] for i in range(n)], [ds[i] for i in range(n, 2 * n)]
    assert sorted(epoch0) == sorted(epoch1) == list(range(n))
    assert epoch0 != epoch1 and epoch0 != list(range(n))
    again = BlockShuffle(grain.MapDataset.source(list(range(n))), np.ones(n, np.int64), seed=3)
    assert [again[i] for i in range(n)] == epoch0
    strided = ds[2::7]
    assert [strided[k] for k in range(5)] == [ds[2 + 7 * k] for k in range(5)]


def test_block_shuffle_stays_within_a_window_of_row_groups():
    sizes = np.full(20, 10, np.int64)  # 20 row groups of 10 rows
    ds = BlockShuffle(grain.MapDataset.source(list(range(200))), sizes, seed=0,
                      window_blocks=2)
    order = [ds[i] for i in range(200)]
    assert sorted(order) == list(range(200))
    for w in range(10):  # every 20 consecutive positions come from exactly 2 row groups
        assert len({r // 10 for r in order[20 * w:20 * (w + 1)]}) == 2


def test_split_tail_views(tmp_path):
    _shards(tmp_path, files=1, groups=3, rows=4)
    index = build_index([str(tmp_path)], validate=text_field(), columns=("text",))
    train, val = split_tail(index, 6)
    assert (len(train), len(val)) == (6, 6)
    assert list(train.block_sizes) == [4, 2] and list(val.block_sizes) == [2, 4]
    assert val[0] == index[6] and train[5] == index[5]
    small = memory_index(["a", "b", "c"])
    assert [split_tail(small, 1)[1][0]] == ["c"]
