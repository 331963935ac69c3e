"""Saving the data position in orbax checkpoints so any host count can resume it.

grain's own handler writes `process_{i}-of-{n}.json` per host and, on restore, reads only the
file of the same index *and* count: a run saved on 2 hosts cannot resume on 1. This handler
saves the same files, and restores a `GlobalBatchIterator` from the union of every host's
file (see `global_batches.py`), so the run continues the same global batch sequence on any
host count. Other iterators restore as grain's handler does.

    items["data"] = DataSave(data_iter)        # in place of grain.checkpoint.CheckpointSave
    items["data"] = DataRestore(data_iter)     # in place of grain.checkpoint.CheckpointRestore
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orbax.checkpoint as ocp
from etils import epath
from grain._src.python.checkpoint.handler import CheckpointHandler

from llm_jax.data.global_batches import GlobalBatchIterator, restore_from_files


class DataHandler(CheckpointHandler):
    """grain's handler, restoring a `GlobalBatchIterator` from every host's saved file."""

    def restore(self, directory: epath.Path, item: Any = None, args: Any = None) -> Any:
        iterator = item or args.item
        if isinstance(iterator, GlobalBatchIterator):
            restore_from_files(iterator, directory)
            return iterator
        return super().restore(directory, item=item, args=args)


@ocp.args.register_with_handler(DataHandler, for_save=True)
@dataclasses.dataclass
class DataSave(ocp.args.CheckpointArgs):
    item: Any


@ocp.args.register_with_handler(DataHandler, for_restore=True)
@dataclasses.dataclass
class DataRestore(ocp.args.CheckpointArgs):
    item: Any
