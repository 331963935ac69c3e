"""One global batch sequence, whatever the number of hosts; each host makes only its rows.

Row `r` of every batch comes from stream `r`, which reads records `r, r + B, r + 2B, ...` of
the seeded order (`B` = global rows), so batches never depend on the host count. The state
is JSON holding each stream's grain state; `merge_states` joins the hosts' states so any host
count can resume. A state saved with another batch size or seed is refused (`DataError`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import grain
import numpy as np

from llm_jax.data.errors import DataError
from llm_jax.data.packing import stack_rows

STATE_FORMAT = 1


def host_rows(global_rows: int, host_index: int, host_count: int) -> range:
    """The global batch rows host `host_index` of `host_count` produces."""
    if host_count < 1 or not 0 <= host_index < host_count:
        raise ValueError(f"host {host_index} of {host_count}")
    if global_rows % host_count:
        raise DataError(f"data.batch_size={global_rows} is not divisible by {host_count} hosts")
    local = global_rows // host_count
    return range(host_index * local, (host_index + 1) * local)


def epoch_order(seed: int, n: int, start: int, count: int) -> list[int]:
    """Items `start .. start+count` of an endless walk over `n` items in seeded per-epoch
    permutations: a batch that depends only on (seed, position), so resuming needs no state."""
    orders: dict[int, np.ndarray] = {}
    picked = []
    for k in range(start, start + count):
        epoch, index = divmod(k, n)
        if epoch not in orders:
            orders[epoch] = np.random.default_rng([seed, epoch]).permutation(n)
        picked.append(int(orders[epoch][index]))
    return picked


class GlobalBatchIterator:
    """Endless batches of this host's rows; `make_stream(r)` builds global row `r`'s packed rows."""

    def __init__(self, make_stream: Callable[[int], grain.IterDataset], *, global_rows: int,
                 host_index: int = 0, host_count: int = 1,
                 fingerprint: dict[str, Any] | None = None):
        self.rows = host_rows(global_rows, host_index, host_count)
        self.global_rows = global_rows
        self.fingerprint = {"rows": global_rows, **(fingerprint or {})}
        self._streams = {r: iter(make_stream(r)) for r in self.rows}
        self.step = 0

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        batch = stack_rows([next(self._streams[r]) for r in self.rows])
        self.step += 1
        return batch

    def get_state(self) -> bytes:
        return json.dumps({"format": STATE_FORMAT, "fingerprint": self.fingerprint,
                           "step": self.step,
                           "streams": {str(r): it.get_state()
                                       for r, it in self._streams.items()}}).encode()

    def set_state(self, state: bytes) -> None:
        saved = json.loads(state)
        if saved.get("format") != STATE_FORMAT:
            raise DataError(f"saved data position has format {saved.get('format')!r}, this "
                            f"version reads format {STATE_FORMAT}")
        if saved["fingerprint"] != self.fingerprint:
            changed = ", ".join(f"{k}: saved {saved['fingerprint'].get(k)!r}, now {v!r}"
                                for k, v in self.fingerprint.items()
                                if saved["fingerprint"].get(k) != v)
            raise DataError(f"cannot resume the data position: the data settings changed "
                            f"({changed}); start a new run for new data settings")
        missing = [r for r in self.rows if str(r) not in saved["streams"]]
        if missing:
            raise DataError(f"saved data position lacks rows {missing[:4]}...: the checkpoint "
                            "holds only some hosts' data states")
        for r, it in self._streams.items():
            it.set_state(_json_tuples(saved["streams"][str(r)]))
        self.step = saved["step"]

    def start_prefetch(self) -> None:
        """Called by grain's checkpoint handler after a restore; nothing is prefetched."""


def merge_states(states: Sequence[bytes]) -> bytes:
    """One state holding every stream of the hosts' saved states (all at the same step)."""
    loaded = [json.loads(s) for s in states]
    if not loaded:
        raise ValueError("no states to merge")
    steps = {s["step"] for s in loaded}
    if len(steps) != 1 or len({json.dumps(s["fingerprint"], sort_keys=True)
                                for s in loaded}) != 1:
        raise DataError(f"the hosts' saved data positions disagree (steps {sorted(steps)})")
    merged = dict(loaded[0], streams={})
    for s in loaded:
        merged["streams"].update(s["streams"])
    return json.dumps(merged).encode()


def restore_from_files(iterator: GlobalBatchIterator, directory: str | Path) -> None:
    """Set `iterator` from a checkpoint's data item: every `process_*-of-*.json` in
    `directory` (one per host that saved), whatever host count wrote them."""
    files = sorted(Path(directory).glob("process_*-of-*.json"))
    if not files:
        raise DataError(f"{directory}: no saved data position (process_*-of-*.json)")
    iterator.set_state(merge_states([f.read_bytes() for f in files]))


def _json_tuples(state):
    # grain's concat-then-split packer compares `(start, end)` tuples in its state on restore;
    # JSON hands them back as lists, which silently mis-restores the position.
    if isinstance(state, dict):
        return {k: ({f: tuple(v) for f, v in value.items()} if k == "remainder_slices"
                    else _json_tuples(value)) for k, value in state.items()}
    return state
