"""Training batches: packed rows, seeded order, the same global batches for any host count,
exact resume (also on a different host count), fixed validation batches."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llm_jax.data.errors import DataError
from llm_jax.data.global_batches import merge_states, restore_from_files
from llm_jax.data.index import build_index
from llm_jax.data.pipeline import (
    eval_batches,
    packed_batches,
    train_documents_sample,
    train_iterator,
)
from llm_jax.data.records import text_field
from tests.helpers import CharTokenizer

TOK = CharTokenizer()
DOCS = ["alpha beta", "gamma", "a much longer third document that spills over rows", "z"]
MANY = [f"document {i}: " + "lorem ipsum " * (i % 7 + 1) for i in range(40)]


def _hosts(docs, host_count, steps, *, batch_size=8, state=None, **kw):
    """`steps` global batches assembled from `host_count` hosts' iterators (optionally
    restored from `state`), and the hosts' iterators."""
    its = [train_iterator(docs, TOK, seq_len=kw.pop("seq_len", 24), batch_size=batch_size,
                          seed=5, host_index=h, host_count=host_count, **kw)
           for h in range(host_count)]
    if state is not None:
        for it in its:
            it.set_state(state)
    batches = []
    for _ in range(steps):
        parts = [next(it) for it in its]
        batches.append({k: np.concatenate([p[k] for p in parts]) for k in parts[0]})
    return batches, its


def _assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for k in x:
            np.testing.assert_array_equal(x[k], y[k], err_msg=k)


def test_rows_are_packed_with_segments_and_positions():
    batch = next(train_iterator(DOCS, TOK, seq_len=16, batch_size=4, seed=0))
    assert batch["inputs"].shape == (4, 16) and batch["inputs"].dtype == np.int32
    for row in range(4):
        inputs, targets = batch["inputs"][row], batch["targets"][row]
        seg, pos = batch["segment_ids"][row], batch["positions"][row]
        assert (seg > 0).all()  # training rows are completely full
        same_doc = seg[1:] == seg[:-1]
        np.testing.assert_array_equal(targets[:-1][same_doc], inputs[1:][same_doc])
        for s in np.flatnonzero(np.diff(seg)) + 1:  # a document starting inside the row
            assert pos[s] == 0 and inputs[s] == TOK.bos_id
            assert targets[s - 1] == TOK.eos_id  # the previous document ended with <|eos|>
        assert (np.diff(pos)[same_doc] == 1).all()


def test_every_document_appears_in_one_epoch_and_order_is_seeded():
    it = train_iterator(DOCS, TOK, seq_len=8, batch_size=2, seed=1)
    batches = [next(it)["inputs"] for _ in range(12)]
    streams = ["".join(TOK.decode(b[r]) for b in batches) for r in range(2)]  # row r's text
    assert all(any(doc in s for s in streams) for doc in DOCS)
    first = lambda seed: next(train_iterator(MANY, TOK, seq_len=16, batch_size=4,  # noqa: E731
                                             seed=seed))["inputs"]
    np.testing.assert_array_equal(first(3), first(3))
    assert not np.array_equal(first(3), first(4))


def test_rows_of_a_batch_come_from_many_documents():
    docs = [chr(ord("A") + i) * 100 for i in range(50)]  # each document fills several rows
    batch = next(train_iterator(docs, TOK, seq_len=16, batch_size=16, seed=0))
    assert len({c for row in batch["inputs"] for c in TOK.decode(row)}) >= 14


def test_global_batches_do_not_depend_on_host_count():
    one, _ = _hosts(MANY, 1, 6)
    two, _ = _hosts(MANY, 2, 6)
    four, _ = _hosts(MANY, 4, 6)
    _assert_same(one, two)
    _assert_same(one, four)
    host0 = next(train_iterator(MANY, TOK, seq_len=24, batch_size=8, seed=5, host_index=0,
                                host_count=2))
    assert host0["inputs"].shape == (4, 24)


def test_resume_midway_on_another_host_count():
    full, _ = _hosts(MANY, 1, 8)
    # Two hosts run 3 steps and save; the merged state resumes on 1, 2 or 4 hosts.
    first, its = _hosts(MANY, 2, 3)
    _assert_same(first, full[:3])
    state = merge_states([it.get_state() for it in its])
    for hosts in (1, 2, 4):
        rest, _ = _hosts(MANY, hosts, 5, state=state)
        _assert_same(rest, full[3:])
    # One host saves; two hosts resume from its single state.
    _, (solo,) = _hosts(MANY, 1, 4)
    rest, _ = _hosts(MANY, 2, 4, state=solo.get_state())
    _assert_same(rest, full[4:])


def test_restore_from_per_host_files(tmp_path):
    full, _ = _hosts(MANY, 1, 5)
    _, its = _hosts(MANY, 2, 2)
    for h, it in enumerate(its):  # what grain's checkpoint handler writes on each host
        (tmp_path / f"process_{h}-of-2.json").write_bytes(it.get_state())
    again = train_iterator(MANY, TOK, seq_len=24, batch_size=8, seed=5)
    restore_from_files(again, tmp_path)
    _assert_same([next(again) for _ in range(3)], full[2:])
    with pytest.raises(DataError, match="no saved data position"):
        restore_from_files(again, tmp_path / "missing")


def test_partial_or_mismatched_state_is_refused():
    _, its = _hosts(MANY, 2, 1)
    lone = train_iterator(MANY, TOK, seq_len=24, batch_size=8, seed=5)
    with pytest.raises(DataError, match="lacks rows"):
        lone.set_state(its[1].get_state())
    other = train_iterator(MANY, TOK, seq_len=24, batch_size=16, seed=5)
    with pytest.raises(DataError, match=r"data settings changed \(rows: saved 8, now 16"):
        other.set_state(merge_states([it.get_state() for it in its]))
    assert json.loads(its[0].get_state())["step"] == 1


def test_lazy_parquet_corpus_is_host_invariant(tmp_path):
    texts = [f"row {i} " + "text " * (i % 5) for i in range(60)]
    pq.write_table(pa.table({"text": texts}), tmp_path / "c.parquet", row_group_size=10)
    index = build_index([str(tmp_path)], validate=text_field(), columns=("text",))
    one, _ = _hosts(index, 1, 4, window_blocks=2)
    two, _ = _hosts(index, 2, 4, window_blocks=2)
    _assert_same(one, two)
    seen = "".join(TOK.decode(r) for b in one for r in b["inputs"])
    assert "row " in seen


def test_sft_examples_keep_a_loss_mask():
    def example(text):
        ids = np.asarray([TOK.bos_id, *TOK.encode(text), TOK.eos_id], np.int32)
        mask = np.zeros(len(ids) - 1, np.int32)
        mask[len(mask) // 2:] = 1
        return {"inputs": ids[:-1], "targets": ids[1:], "loss_mask": mask}

    kw = dict(seq_len=32, batch_size=4, seed=0, fields=("inputs", "targets", "loss_mask"),
              split=False)
    batch = next(packed_batches(MANY, example, **kw))
    assert set(batch) == {"inputs", "targets", "loss_mask", "segment_ids", "positions"}
    assert batch["loss_mask"].shape == (4, 32)
    assert ((batch["loss_mask"] == 1) <= (batch["segment_ids"] > 0)).all()
    halves = [next(packed_batches(MANY, example, host_index=h, host_count=2, **kw))
              for h in range(2)]
    np.testing.assert_array_equal(np.concatenate([h["loss_mask"] for h in halves]),
                                  batch["loss_mask"])


def test_eval_batches_fixed_padded_and_host_invariant():
    batches = eval_batches(DOCS, TOK, seq_len=16, batch_size=4, max_batches=10)
    total = sum(int((b["segment_ids"] > 0).sum()) for b in batches)
    assert total == sum(len(TOK.encode(d)) + 1 for d in DOCS)  # every token once, no repeats
    last = batches[-1]
    assert last["inputs"].shape == (4, 16)
    assert (last["segment_ids"][-1] == 0).any()  # tail padding is marked as padding
    halves = [eval_batches(DOCS, TOK, seq_len=16, batch_size=4, max_batches=10, host_index=h,
                           host_count=2) for h in range(2)]
    for i, b in enumerate(batches):
        np.testing.assert_array_equal(
            np.concatenate([halves[0][i]["inputs"], halves[1][i]["inputs"]]), b["inputs"])


def test_per_host_batch_size_form_gives_the_same_rows():
    new = next(train_iterator(MANY, TOK, seq_len=24, batch_size=8, seed=5, host_index=1,
                              host_count=2))
    old = next(train_iterator(MANY, TOK, seq_len=24, batch_size=4, seed=5, shard_index=1,
                              shard_count=2))
    _assert_same([new], [old])


def test_tokenizer_sample_reads_the_whole_corpus_in_seeded_order():
    sample = list(train_documents_sample(MANY, 200, seed=0))
    assert sum(map(len, sample)) >= 200 > sum(map(len, sample[:-1]))  # capped at 200 chars
    assert sample == list(train_documents_sample(MANY, 200, seed=0))
    assert sample != MANY[:len(sample)]  # shuffled: not only the first files' documents
    assert len(list(train_documents_sample(MANY, 10**9))) == len(MANY)
