"""orbax checkpoints of the train state and the grain iterator, with a safe resume.

Restore walks back from the newest checkpoint, naming and skipping damaged ones. A failed save
is one `CheckpointError` (step, cause, last complete checkpoint), never a hang: orbax calls run
on daemon threads waited on in short slices, so signals are still handled."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

from llm_jax.data.checkpointing import DataRestore, DataSave
from llm_jax.errors import CheckpointError

log = logging.getLogger(__name__)


def _cause(error: BaseException) -> str:
    """`Type: first line` of an exception (orbax messages run to pages of tensorstore spec)."""
    lines = [x.strip() for x in str(error).splitlines() if x.strip()]
    return (f"{type(error).__name__}: {lines[0][:300].rstrip(':')}" if lines
            else type(error).__name__)


# What orbax's and tensorstore's threads raise when they outlive a failed save: the event
# loop or the executor they call back into has been shut down by then.
_ORPHANED_MESSAGES = ("Event loop is closed",
                      "cannot schedule new futures after interpreter shutdown",
                      "cannot schedule new futures after shutdown")


def _is_orphaned_callback(error: BaseException | None) -> bool:
    return isinstance(error, RuntimeError) and str(error) in _ORPHANED_MESSAGES


# Set once a save has failed and been reported: what orbax abandoned may still report later.
_SAVE_FAILED = threading.Event()


class _OrbaxErrorsOnOneLine(logging.Filter):
    """Keep orbax's failure records to one line; after the `CheckpointError`, to the debug log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and "orbax" in Path(record.pathname).parts:
            error = record.exc_info[1]
            if _is_orphaned_callback(error) or _SAVE_FAILED.is_set():
                # An abandoned save's thread outliving the run: the failure is already
                # reported as one CheckpointError, so this is not news for the terminal.
                log.debug("orbax thread after a failed save: %s", _cause(error))
                return False
            first = (record.getMessage().strip().splitlines() or [""])[0][:300]
            record.msg = f"{first} ({_cause(error)})" if error is not None else first
            record.args, record.exc_info, record.exc_text = None, None, None
        return True


def _raised_in_orbax(error: BaseException) -> bool:
    tb = error.__traceback__
    while tb is not None:
        if "orbax" in Path(tb.tb_frame.f_code.co_filename).parts:
            return True
        tb = tb.tb_next
    return False


def _abandoned_by_a_save(error: BaseException) -> bool:
    # Raised through orbax's code, or set on the future by tensorstore's native writer and
    # never raised in Python at all (no traceback: asyncio then prints only its last line).
    return error.__traceback__ is None or _raised_in_orbax(error)


class _AbandonedSaveFutures(logging.Filter):
    """Unread futures of a failed save go to the debug log, not the terminal, after the error."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if _SAVE_FAILED.is_set() and error is not None and _abandoned_by_a_save(error):
            log.debug("orbax future abandoned by a failed save: %s", _cause(error))
            return False
        return True


def _quiet_orbax_tracebacks() -> None:
    for name, kind in (("absl", _OrbaxErrorsOnOneLine),  # orbax logs through absl
                       ("asyncio", _AbandonedSaveFutures)):
        logger = logging.getLogger(name)
        if not any(isinstance(f, kind) for f in logger.filters):
            logger.addFilter(kind())


def _quiet_orphaned_callbacks() -> None:
    """Tracebacks from tensorstore finishing abandoned writes go to the debug log."""
    if getattr(sys.excepthook, "_drops_orphaned_callbacks", False):
        return
    excepthook, unraisablehook = sys.excepthook, sys.unraisablehook

    def quiet_excepthook(kind, error, tb):
        if _is_orphaned_callback(error):
            log.debug("callback after a failed save: %s", error)
        else:
            excepthook(kind, error, tb)

    def quiet_unraisablehook(unraisable):
        if _is_orphaned_callback(unraisable.exc_value):
            log.debug("callback after a failed save: %s", unraisable.exc_value)
        else:
            unraisablehook(unraisable)

    quiet_excepthook._drops_orphaned_callbacks = True
    sys.excepthook, sys.unraisablehook = quiet_excepthook, quiet_unraisablehook


class _Call:
    """One orbax call on a daemon thread (so orbax's own threads are daemons: exit never blocks)."""

    def __init__(self, name: str, blocking: Callable[[], Any],
                 background: Callable[[], Any] | None = None):
        self.returned = threading.Event()  # `blocking` is done: the caller may go on
        self.finished = threading.Event()  # `background` is done too
        self.result: Any = None
        self.error: BaseException | None = None

        def run() -> None:
            try:
                self.result = blocking()
                self.returned.set()
                if background is not None:
                    background()
            except BaseException as e:  # noqa: BLE001 - handed to the waiting thread
                self.error = e
            finally:
                self.returned.set()
                self.finished.set()

        self.thread = threading.Thread(target=run, name=name, daemon=True)
        self.thread.start()


def _wait_for(event: threading.Event, timeout_s: float,
              give_up_at: Callable[[], float | None] = lambda: None) -> bool:
    """Wait in short slices so signals are handled; False on timeout or once past `give_up_at()`."""
    deadline = time.monotonic() + timeout_s
    while not event.wait(0.2):
        cap = give_up_at()
        if time.monotonic() >= min(deadline, cap if cap is not None else deadline):
            return False
    return True


def abstract_like(tree):
    """ShapeDtypeStructs with the live arrays' shardings: restore lands sharded the same way."""
    return jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), tree)


class Checkpointer:
    """Keep-last-k, every-N-steps checkpointing in `directory` (async where supported).

    Every wait on orbax is bounded by `timeout_s` (`stop_grace_s` after `interrupt`)."""

    def __init__(self, directory: str | Path, *, save_every: int, keep: int = 3,
                 async_save: bool = True, timeout_s: float = 1200.0,
                 stop_grace_s: float = 60.0):
        self.directory = Path(directory).absolute()
        self.timeout_s = timeout_s
        self.stop_grace_s = stop_grace_s
        self._give_up_at: float | None = None  # set by `interrupt`
        _quiet_orbax_tracebacks()
        _quiet_orphaned_callbacks()
        options = ocp.CheckpointManagerOptions(
            save_decision_policy=ocp.checkpoint_managers.FixedIntervalPolicy(max(save_every, 1)),
            preservation_policy=ocp.checkpoint_managers.LatestN(max(keep, 1)),
            enable_async_checkpointing=async_save,
            # Create the step directory before save() returns, so a directory that cannot be
            # created fails that save instead of leaving orbax threads waiting for it.
            async_options=ocp.AsyncOptions(timeout_secs=max(int(timeout_s), 1),
                                           create_directories_asynchronously=False),
            create=True,
        )
        self.manager = self._run("open", lambda: ocp.CheckpointManager(self.directory,
                                                                        options=options))
        self._pending: _Call | None = None  # the last save, possibly still committing
        self._pending_step: int | None = None
        self._last_good = self.manager.latest_step()
        self._failure: CheckpointError | None = None

    def interrupt(self) -> None:
        """A stop signal arrived: wait at most `stop_grace_s` more for any save (signal-safe)."""
        if self._give_up_at is None:
            self._give_up_at = time.monotonic() + self.stop_grace_s

    def _waited(self, event: threading.Event) -> bool:
        return _wait_for(event, self.timeout_s, lambda: self._give_up_at)

    def steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state, data_iter: Any = None, *, force: bool = False) -> bool:
        """Save if due (or `force`); returns once arrays are copied. Raises a past failure."""
        self._check_pending(block=False)
        if not force and not self.manager.should_save(step):
            return False
        self._check_pending(block=True)  # one save at a time, as orbax itself requires
        self._check_directory(step)
        items = {"state": ocp.args.StandardSave(state)}
        if data_iter is not None:
            items["data"] = DataSave(data_iter)
        call = _Call(f"checkpoint-save-{step}",
                     lambda: self.manager.save(step, args=ocp.args.Composite(**items),
                                               force=force),
                     self.manager.wait_until_finished)
        self._pending, self._pending_step = call, step
        if not self._waited(call.returned):
            raise self._fail(step, self._gave_up("copying the arrays out"))
        if call.error is not None:
            raise self._fail(step, _cause(call.error))
        return bool(call.result)

    def wait(self) -> None:
        """Block (at most `timeout_s`) until the last save is written; raise if it failed."""
        self._check_pending(block=True)

    def close(self) -> None:
        """Finish the last save and release orbax; after a failure, only let go."""
        if self._failure is not None:
            return  # the error is out already; waiting on a dead save again could hang
        self.wait()
        self._run("close", self.manager.close)

    def restore(self, abstract_state, data_iter: Any = None) -> tuple[Any, int] | None:
        """(state, step) from the newest readable checkpoint or None; moves `data_iter`."""
        steps = self.steps()
        bad = []
        for step in reversed(steps):
            items = {"state": ocp.args.StandardRestore(abstract_state)}
            if data_iter is not None:
                items["data"] = DataRestore(data_iter)
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

    # ------------------------------------------------------------------ failures

    def _check_pending(self, *, block: bool) -> None:
        """Raise the failure of the last save if it has failed (waiting for it if `block`)."""
        if self._failure is not None:
            raise self._failure
        call, step = self._pending, self._pending_step
        if call is None:
            return
        if block and not self._waited(call.finished):
            raise self._fail(step, self._gave_up("writing"))
        if not call.finished.is_set():
            return
        self._pending = None
        if call.error is not None:
            raise self._fail(step, _cause(call.error))
        if call.result:
            self._last_good = step

    def _check_directory(self, step: int) -> None:
        # orbax would quietly re-create a removed directory (the older checkpoints gone with
        # it) and fails deep in a thread on one replaced by a file: say so up front instead.
        if not self.directory.is_dir():
            raise self._fail(step, "")  # `_fail` names what happened to the directory

    def _gave_up(self, doing: str) -> str:
        if self._give_up_at is not None and time.monotonic() >= self._give_up_at:
            return f"still {doing} when the stop signal's grace period ran out"
        return f"still {doing} after {self.timeout_s:.0f} s"

    def _fail(self, step: int | None, cause: str) -> CheckpointError:
        if not self.directory.is_dir():  # the likeliest cause of a failure deep in orbax
            what = "is not a directory" if self.directory.exists() else "is gone"
            cause = (f"{self.directory} {what} (removed or replaced while the run was "
                     "writing to it)")
        last = (f"the last complete checkpoint is step {self._last_good}"
                if self._last_good is not None else "no checkpoint was completed")
        _SAVE_FAILED.set()
        self._failure = CheckpointError(
            f"saving checkpoint {step} in {self.directory} failed: {cause}; {last} (re-run "
            "the same command to resume from it once the cause is fixed)")
        return self._failure

    def _run(self, what: str, fn: Callable[[], Any]) -> Any:
        call = _Call(f"checkpoint-{what}", fn)
        if not self._waited(call.finished):
            raise CheckpointError(f"{what} of checkpoints in {self.directory} did not finish "
                                  f"within {self.timeout_s:.0f} s")
        if call.error is not None:
            raise CheckpointError(f"{what} of checkpoints in {self.directory} failed: "
                                  f"{_cause(call.error)}")
        return call.result
