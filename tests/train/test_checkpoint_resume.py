"""Save → restore gives the same next batches and the same next loss; damage is survived."""

import jax
import numpy as np
import pytest

from llm_jax.data.pipeline import train_iterator
from llm_jax.train.checkpoint import Checkpointer, CheckpointError, abstract_like
from tests.helpers import CharTokenizer, sharded_step, tiny_config

DOCS = [f"document {i}: " + "lorem ipsum " * (i % 7 + 1) for i in range(40)]


def _setup():
    cfg = tiny_config("gpt2", vocab_size=260)
    state, step, _ = sharded_step(cfg, {"data": 1, "fsdp": 4, "tensor": 2}, "fsdp_tp")
    data_iter = train_iterator(DOCS, CharTokenizer(), seq_len=32, batch_size=8, seed=5)
    return state, step, data_iter


def test_save_restore_same_batches_and_loss(tmp_path):
    state, step, data_iter = _setup()
    ckpt = Checkpointer(tmp_path / "ckpt", save_every=2, keep=2)
    for i in range(1, 4):
        state, _ = step(state, next(data_iter))
        ckpt.save(i, state, data_iter)
    ckpt.wait()
    assert ckpt.steps() == [2]  # step 3 is off the interval, step 1 too
    # Continue the original run from step 3 ... but compare from the saved step 2.
    fresh_state, fresh_step, fresh_iter = _setup()
    restored, at = ckpt.restore(abstract_like(fresh_state), fresh_iter)
    assert at == 2 and int(restored.step) == 2
    assert restored.params["block_0"]["mlp"]["fc_in"]["kernel"].sharding == \
        fresh_state.params["block_0"]["mlp"]["fc_in"]["kernel"].sharding
    # Replay the uninterrupted run from scratch to step 2, then compare the next 2 steps.
    ref_state, ref_step, ref_iter = _setup()
    for _ in range(2):
        ref_state, _ = ref_step(ref_state, next(ref_iter))
    for _ in range(2):
        ref_batch, new_batch = next(ref_iter), next(fresh_iter)
        for k in ref_batch:
            np.testing.assert_array_equal(ref_batch[k], new_batch[k])
        ref_state, ref_m = ref_step(ref_state, ref_batch)
        restored, new_m = fresh_step(restored, new_batch)
        assert float(ref_m["loss"]) == float(new_m["loss"])  # bit for bit on CPU
    np.testing.assert_array_equal(jax.device_get(ref_state.rng), jax.device_get(restored.rng))
    ckpt.close()


def _corrupt(step_dir):
    files = sorted(p for p in step_dir.rglob("*") if p.is_file() and p.stat().st_size > 0)
    for p in files:  # damage every data file of the state item
        if "state" in p.parts:
            p.write_bytes(b"\0garbage")


def test_damaged_newest_falls_back_with_warning(tmp_path, caplog):
    state, step, data_iter = _setup()
    ckpt = Checkpointer(tmp_path / "ckpt", save_every=1, keep=3, async_save=False)
    for i in range(1, 3):
        state, _ = step(state, next(data_iter))
        ckpt.save(i, state, data_iter)
    ckpt.wait()
    _corrupt(tmp_path / "ckpt" / "2")
    fresh_state, _, fresh_iter = _setup()
    with caplog.at_level("WARNING"):
        restored, at = Checkpointer(tmp_path / "ckpt", save_every=1).restore(
            abstract_like(fresh_state), fresh_iter)
    assert at == 1 and int(restored.step) == 1
    assert any(str(tmp_path / "ckpt" / "2") in r.getMessage() for r in caplog.records)


def test_all_damaged_refuses_to_restart(tmp_path):
    state, step, data_iter = _setup()
    ckpt = Checkpointer(tmp_path / "ckpt", save_every=1, async_save=False)
    state, _ = step(state, next(data_iter))
    ckpt.save(1, state, data_iter)
    ckpt.wait()
    _corrupt(tmp_path / "ckpt" / "1")
    fresh_state, _, fresh_iter = _setup()
    with pytest.raises(CheckpointError, match="refusing to restart"):
        Checkpointer(tmp_path / "ckpt", save_every=1).restore(abstract_like(fresh_state),
                                                              fresh_iter)
