"""Packing: rows are full, documents are delimited by EOS/BOS, segment ids and positions agree."""

import numpy as np

from llm_jax.data.pipeline import eval_batches, train_dataset
from tests.helpers import CharTokenizer

TOK = CharTokenizer()
DOCS = ["alpha beta", "gamma", "a much longer third document that spills over rows", "z"]


def test_rows_are_packed_with_segments_and_positions():
    it = iter(train_dataset(DOCS, TOK, seq_len=16, batch_size=4, seed=0))
    batch = next(it)
    assert batch["inputs"].shape == (4, 16) and batch["inputs"].dtype == np.int32
    for row in range(4):
        inputs, targets = batch["inputs"][row], batch["targets"][row]
        seg, pos = batch["segment_ids"][row], batch["positions"][row]
        assert (seg > 0).all()  # training rows are completely full
        # targets are inputs shifted by one within a document
        same_doc = seg[1:] == seg[:-1]
        np.testing.assert_array_equal(targets[:-1][same_doc], inputs[1:][same_doc])
        # a new segment starts at position 0 with <|bos|> unless it continues a split document
        starts = np.flatnonzero(np.diff(seg)) + 1
        for s in starts:
            assert pos[s] == 0 and inputs[s] == TOK.bos_id
            assert targets[s - 1] == TOK.eos_id  # the previous document ended with <|eos|>
        # positions count up inside a segment
        assert (np.diff(pos)[same_doc] == 1).all()


def test_every_document_appears_in_one_epoch():
    it = iter(train_dataset(DOCS, TOK, seq_len=8, batch_size=2, seed=1, row_shuffle_window=1))
    text = ""
    for _ in range(12):
        b = next(it)
        text += "".join(TOK.decode(row) for row in b["inputs"])
    for doc in DOCS:
        assert doc[:5] in text


def test_shuffle_is_seeded_and_hosts_get_disjoint_shards():
    first = lambda seed: next(iter(train_dataset(DOCS * 5, TOK, seq_len=16, batch_size=2,  # noqa: E731
                                                 seed=seed, row_shuffle_window=8)))["inputs"]
    np.testing.assert_array_equal(first(3), first(3))
    assert not np.array_equal(first(3), first(4))
    docs = [f"doc{i}" for i in range(10)]
    seen = []
    for host in range(2):
        it = iter(train_dataset(docs, TOK, seq_len=64, batch_size=1, seed=0, shard_index=host,
                                shard_count=2, row_shuffle_window=1))
        seen.append({d for d in docs if d in TOK.decode(next(it)["inputs"][0])})
    assert seen[0] and seen[1] and not seen[0] & seen[1]


def test_eval_batches_fixed_and_padded():
    batches = eval_batches(DOCS, TOK, seq_len=16, batch_size=4, max_batches=10)
    assert batches, "validation text produced no batch"
    total = sum(int((b["segment_ids"] > 0).sum()) for b in batches)
    assert total == sum(len(TOK.encode(d)) + 1 for d in DOCS)  # every token once, no repeats
    last = batches[-1]
    assert last["inputs"].shape == (4, 16)
    assert (last["segment_ids"][-1] == 0).any()  # tail padding is marked as padding
    again = eval_batches(DOCS, TOK, seq_len=16, batch_size=4, max_batches=10)
    np.testing.assert_array_equal(batches[0]["inputs"], again[0]["inputs"])


def test_rows_of_a_batch_come_from_many_documents():
    docs = [chr(ord("A") + i) * 100 for i in range(50)]  # each document fills several rows

    def documents_in(batch):
        return {c for row in batch["inputs"] for c in TOK.decode(row)}

    shuffled = next(iter(train_dataset(docs, TOK, seq_len=16, batch_size=16, seed=0)))
    in_order = next(iter(train_dataset(docs, TOK, seq_len=16, batch_size=16, seed=0,
                                       row_shuffle_window=1)))
    assert len(documents_in(in_order)) <= 3
    assert len(documents_in(shuffled)) >= 8
