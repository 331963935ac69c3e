"""Saving the data position in orbax checkpoints so any host count can resume it.

grain's handler restores only a file of the same host index and count; this one restores a
`GlobalBatchIterator` from every host's file. Use `DataSave`/`DataRestore` in place of
grain's `CheckpointSave`/`CheckpointRestore`."""

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
