"""orbax checkpoints of the train state and the grain iterator, with a safe resume.

A checkpoint holds params, optimizer state, step and rng (`state`) and the data iterator's
position (`data`), so a resumed run continues with exactly the batches it would have seen.
Restoring walks from the newest checkpoint backwards: a damaged one is reported by name and
skipped, and if every one is damaged the run stops instead of silently starting over.
Nothing here unpickles: orbax stores arrays as tensorstore/OCDBT and metadata as JSON.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import grain
import jax
import orbax.checkpoint as ocp

from llm_jax.errors import RunError

log = logging.getLogger(__name__)


class CheckpointError(RunError):
    """No usable checkpoint although some exist."""


def abstract_like(tree):
    """ShapeDtypeStructs with the live arrays' shardings: restore lands sharded the same way."""
    return jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), tree)


class Checkpointer:
    """Keep-last-k, every-N-steps checkpointing in `directory` (async where supported)."""

    def __init__(self, directory: str | Path, *, save_every: int, keep: int = 3,
                 async_save: bool = True):
        self.directory = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(
            save_decision_policy=ocp.checkpoint_managers.FixedIntervalPolicy(max(save_every, 1)),
            preservation_policy=ocp.checkpoint_managers.LatestN(max(keep, 1)),
            enable_async_checkpointing=async_save,
            create=True,
        )
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state, data_iter: Any = None, *, force: bool = False) -> bool:
        """Save if the interval policy says so (or `force`); returns whether it saved."""
        items = {"state": ocp.args.StandardSave(state)}
        if data_iter is not None:
            items["data"] = grain.checkpoint.CheckpointSave(data_iter)
        return self.manager.save(step, args=ocp.args.Composite(**items), force=force)

    def restore(self, abstract_state, data_iter: Any = None) -> tuple[Any, int] | None:
        """(state, step) from the newest readable checkpoint, or None if there are none.

        `data_iter`, when given, is moved to the saved position in place.
        """
        steps = self.steps()
        bad = []
        for step in reversed(steps):
            items = {"state": ocp.args.StandardRestore(abstract_state)}
            if data_iter is not None:
                items["data"] = grain.checkpoint.CheckpointRestore(data_iter)
            try:
                restored = self.manager.restore(step, args=ocp.args.Composite(**items))
            except Exception as e:  # noqa: BLE001 - any failure to read means "damaged"
                path = self.directory / str(step)
                log.warning("checkpoint %s is unreadable (%s: %s); trying an older one",
                            path, type(e).__name__, str(e).splitlines()[0][:200])
                bad.append(str(path))
                continue
            if bad:
                log.warning("resumed from step %d; skipped damaged checkpoint(s): %s",
                            step, ", ".join(bad))
            return restored["state"], step
        if bad:
            raise CheckpointError(
                f"every checkpoint in {self.directory} is unreadable ({', '.join(bad)}); "
                "refusing to restart from step 0 over them. Move the directory away to start "
                "fresh.")
        return None

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


def restore_params(directory: str | Path, abstract_params, step: int | None = None
                   ) -> tuple[Any, int]:
    """Only the params of a train-state checkpoint (newest, or `step`), e.g. for sampling.

    `abstract_params` are ShapeDtypeStructs with shardings; optimizer state is never read.
    """
    manager = ocp.CheckpointManager(Path(directory).absolute())
    step = manager.latest_step() if step is None else step
    if step is None:
        raise CheckpointError(f"no checkpoint in {directory}")
    target = {"params": abstract_params}
    restore_args = jax.tree.map(lambda s: ocp.ArrayRestoreArgs(sharding=s.sharding), target)
    restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
        item=target, restore_args=restore_args, partial_restore=True)))
    manager.close()
    return restored["state"]["params"], step
