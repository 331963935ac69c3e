"""Packing keeps per-token fields aligned; segments never mix; positions restart per example."""

import grain
import numpy as np

from llm_jax.data.packing import pack


def _examples(lengths):
    """Example i: inputs 100*i + t, targets inputs + 1, loss_mask 1 on the second half."""
    out = []
    for i, n in enumerate(lengths, start=1):
        inputs = (100 * i + np.arange(n)).astype(np.int32)
        mask = (np.arange(n) >= n // 2).astype(np.int32)
        out.append({"inputs": inputs, "targets": inputs + 1, "loss_mask": mask})
    return out


def _check_rows(rows, examples, seq_len, whole):
    seen = {}
    for row in rows:
        assert set(row) == {"inputs", "targets", "loss_mask", "segment_ids", "positions"}
        assert all(v.shape == (seq_len,) and v.dtype == np.int32 for v in row.values())
        for seg in np.unique(row["segment_ids"][row["segment_ids"] > 0]):
            where = np.flatnonzero(row["segment_ids"] == seg)
            assert (np.diff(where) == 1).all()  # a segment is one contiguous run
            ex = row["inputs"][where] // 100  # which example these tokens are from
            assert (ex == ex[0]).all()  # one example per segment: nothing attends across
            e = examples[ex[0] - 1]
            t = row["inputs"][where] % 100  # token index within the example
            # positions restart at each segment, also where a cut example continues
            np.testing.assert_array_equal(row["positions"][where], t - t[0])
            np.testing.assert_array_equal(row["targets"][where], e["targets"][t])
            np.testing.assert_array_equal(row["loss_mask"][where], e["loss_mask"][t])
            if whole:
                assert t[0] == 0  # never split: each example starts its segment at 0
            seen.setdefault(ex[0], []).extend(t.tolist())
        pad = row["segment_ids"] == 0
        assert (row["loss_mask"][pad] == 0).all() and (row["inputs"][pad] == 0).all()
    return seen


def test_concat_then_split_carries_loss_mask():
    examples = _examples([5, 3, 12, 2, 7, 4])
    ds = grain.MapDataset.source(examples).to_iter_dataset()
    rows = list(pack(ds, 8, ("inputs", "targets", "loss_mask"), split=True))
    seen = _check_rows(rows, examples, 8, whole=False)
    assert sorted(seen[3]) == list(range(12))  # the long example continues on the next row


def test_first_fit_keeps_examples_whole_and_truncates():
    examples = _examples([5, 3, 8, 2, 11, 4])
    ds = grain.MapDataset.source(examples).to_iter_dataset()
    rows = list(pack(ds, 8, ("inputs", "targets", "loss_mask"), split=False,
                     num_packing_bins=2))
    seen = _check_rows(rows, examples, 8, whole=True)
    assert sorted(seen) == [1, 2, 3, 4, 5, 6]
    assert sorted(seen[5]) == list(range(8))  # cut to seq_len, the rest dropped
