"""The data position in an orbax checkpoint resumes on a different host count."""

import numpy as np
import orbax.checkpoint as ocp
from etils import epath
from grain._src.core import sharding

from llm_jax.data.checkpointing import DataHandler, DataRestore, DataSave
from llm_jax.data.pipeline import train_iterator
from tests.helpers import CharTokenizer

TOK = CharTokenizer()
DOCS = [f"document {i}: " + "lorem ipsum " * (i % 7 + 1) for i in range(40)]


def _iterator(host=0, hosts=1):
    return train_iterator(DOCS, TOK, seq_len=24, batch_size=8, seed=5, host_index=host,
                          host_count=hosts)


def test_two_hosts_save_one_host_restores(tmp_path, monkeypatch):
    full = _iterator()
    expected = [next(full) for _ in range(5)]
    hosts = [_iterator(h, 2) for h in range(2)]
    for _ in range(2):
        for it in hosts:
            next(it)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    for h, it in enumerate(hosts):  # each host writes its own file, as in a 2-process run
        monkeypatch.setattr(sharding, "get_process_index_and_count", lambda h=h: (h, 2))
        DataHandler().save(epath.Path(data_dir), args=DataSave(it))
    monkeypatch.undo()
    assert sorted(p.name for p in data_dir.iterdir()) == [
        "process_0-of-2.json", "process_1-of-2.json"]
    resumed = _iterator()
    DataHandler().restore(epath.Path(data_dir), args=DataRestore(resumed))
    for want in expected[2:]:
        got = next(resumed)
        for k in want:
            np.testing.assert_array_equal(got[k], want[k])


def test_orbax_round_trip(tmp_path):
    it = _iterator()
    next(it)
    manager = ocp.CheckpointManager(tmp_path)
    manager.save(1, args=ocp.args.Composite(data=DataSave(it)))
    manager.wait_until_finished()
    want = next(it)
    again = _iterator()
    manager.restore(1, args=ocp.args.Composite(data=DataRestore(again)))
    np.testing.assert_array_equal(next(again)["inputs"], want["inputs"])
