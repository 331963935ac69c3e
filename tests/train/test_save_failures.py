"""A checkpoint save that fails is one `CheckpointError`, raised within seconds, never a hang;
the previous checkpoint still restores; SIGTERM always ends a process stuck on a save."""

import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint._src.serialization.ocdbt_utils as ocdbt_utils
import pytest

from llm_jax.errors import RunError
from llm_jax.train.checkpoint import Checkpointer, CheckpointError, abstract_like
from llm_jax.train.loop import LoopConfig, run_training

ROOT = Path(__file__).resolve().parents[2]
# What orbax 0.12 raised when a second job wrote into the same checkpoint directory.
ZARRAY_ERROR = ("Save failed: 2/2 params are missing .zarray in checkpoint:\nb \nw.\n"
                "Tensorstore KvStore: KvStore({...}).")


def _state(value: float) -> dict:
    return {"w": jnp.full((8, 4), value, jnp.float32), "b": jnp.arange(3.0) + value}


@pytest.fixture
def break_saves(monkeypatch):
    """Call to make every later save fail in orbax's background finalization."""

    async def fail(*args, **kwargs):
        raise ValueError(ZARRAY_ERROR)

    return lambda: monkeypatch.setattr(ocdbt_utils, "_validate_params", fail)


def _assert_restores(directory, step: int, value: float) -> None:
    restored, at = Checkpointer(directory, save_every=1).restore(abstract_like(_state(0.0)))
    assert at == step
    np.testing.assert_array_equal(restored["w"], np.full((8, 4), value, np.float32))


def _assert_one_line(error: BaseException, *parts: str) -> None:
    message = " ".join(str(error).split())
    assert isinstance(error, RunError) and error.exit_code == 1
    for part in parts:
        assert part in message, message
    assert len(message) < 1000, message  # not pages of tensorstore spec


def test_background_failure_is_raised_by_wait_and_close_does_not_wait_again(tmp_path,
                                                                            break_saves):
    ckpt = Checkpointer(tmp_path / "c", save_every=1)
    assert ckpt.save(1, _state(1.0))
    ckpt.wait()
    break_saves()
    start = time.monotonic()
    assert ckpt.save(2, _state(2.0))  # returns: the write goes on in the background
    with pytest.raises(CheckpointError) as e:
        ckpt.wait()
    _assert_one_line(e.value, "checkpoint 2", "Save failed: 2/2 params are missing .zarray",
                     "last complete checkpoint is step 1")
    with pytest.raises(CheckpointError):  # every later call says so too
        ckpt.save(3, _state(3.0), force=True)
    ckpt.close()  # no second wait on the dead save, no second raise
    assert time.monotonic() - start < 20
    assert ckpt.steps() == [1]
    _assert_restores(tmp_path / "c", 1, 1.0)


def test_background_failure_is_raised_by_the_next_save(tmp_path, break_saves):
    ckpt = Checkpointer(tmp_path / "c", save_every=1)
    ckpt.save(1, _state(1.0))
    ckpt.wait()
    break_saves()
    ckpt.save(2, _state(2.0))
    with pytest.raises(CheckpointError, match="checkpoint 2 .* failed"):
        ckpt.save(3, _state(3.0))
    ckpt.close()


def test_training_loop_stops_on_a_failed_save(tmp_path, break_saves):
    ckpt = Checkpointer(tmp_path / "c", save_every=2)

    def iteration(state):
        if float(state["w"][0, 0]) == 3.0:
            ckpt.wait()  # the save at iteration 2 is complete,
            break_saves()  # the one at iteration 4 will fail
        return jax.tree.map(lambda x: x + 1, state), {"loss": jnp.float32(1.0)}

    start = time.monotonic()
    with pytest.raises(CheckpointError) as e:
        run_training(_state(0.0), iteration, LoopConfig(total_iterations=50, log_every=100),
                     checkpointer=ckpt)
    _assert_one_line(e.value, "checkpoint 4", "last complete checkpoint is step 2")
    ckpt.close()
    assert time.monotonic() - start < 30
    _assert_restores(tmp_path / "c", 2, 2.0)


@pytest.mark.parametrize("how", ["replaced_by_a_file", "removed"])
def test_checkpoint_directory_changed_under_the_run(tmp_path, how):
    ckpt = Checkpointer(tmp_path / "c", save_every=1)
    ckpt.save(1, _state(1.0))
    ckpt.wait()
    (tmp_path / "c").rename(tmp_path / "kept")
    if how == "replaced_by_a_file":
        (tmp_path / "c").write_text("not a directory")
    with pytest.raises(CheckpointError) as e:
        ckpt.save(2, _state(2.0))
    what = "is not a directory" if how == "replaced_by_a_file" else "is gone"
    _assert_one_line(e.value, f"{tmp_path / 'c'} {what}", "last complete checkpoint is step 1")
    ckpt.close()
    assert not (tmp_path / "c").is_dir()  # not silently re-created
    _assert_restores(tmp_path / "kept", 1, 1.0)


# A training run whose second save never finishes (a dead filesystem), printing "stuck" once
# it is waiting on it.
STUCK_RUN = textwrap.dedent("""
    import sys, time
    import jax.numpy as jnp
    import orbax.checkpoint as ocp
    from llm_jax.train.checkpoint import Checkpointer
    from llm_jax.train.loop import LoopConfig, run_training

    ckpt = Checkpointer(sys.argv[1], save_every=1, stop_grace_s=float(sys.argv[2]))
    real_save = ocp.CheckpointManager.save

    def save(self, step, *args, **kwargs):
        if step >= 2:
            print("stuck", flush=True)
            time.sleep(10_000)
        return real_save(self, step, *args, **kwargs)

    ocp.CheckpointManager.save = save
    step = lambda s: ({"w": s["w"] + 1}, {"loss": jnp.float32(1.0)})
    try:
        run_training({"w": jnp.zeros(4)}, step, LoopConfig(total_iterations=5), checkpointer=ckpt)
    finally:
        ckpt.close()
""")


def _stuck_run(tmp_path, grace_s: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", STUCK_RUN, str(tmp_path / "c"), str(grace_s)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "stuck", proc.communicate(timeout=60)
    time.sleep(0.5)  # well inside the wait on the stuck save
    return proc


def test_sigterm_ends_a_run_stuck_on_a_save_after_the_grace_period(tmp_path):
    proc = _stuck_run(tmp_path, grace_s=2.0)
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - start < 20
    assert proc.returncode not in (0, None)
    assert "CheckpointError: saving checkpoint 2" in err and "grace period" in err
    shutil.rmtree(tmp_path / "c", ignore_errors=True)


def test_second_sigterm_ends_a_run_stuck_on_a_save_at_once(tmp_path):
    proc = _stuck_run(tmp_path, grace_s=600.0)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - start < 10
    assert proc.returncode == -signal.SIGTERM, err[-2000:]
    assert "second signal" in err


@pytest.mark.parametrize("message", ["Event loop is closed",
                                     "cannot schedule new futures after interpreter shutdown"])
def test_orbax_threads_outliving_a_failed_save_stay_off_the_terminal(message, monkeypatch):
    """After a failed save orbax's threads may still run into its closed loop or executor at
    exit; the failure is already one CheckpointError, so their reports are dropped, while
    any other orbax error is kept, on one line, until the failure is reported: from then on
    orbax's threads finishing the abandoned save are dropped too."""
    import logging
    import threading

    import llm_jax.train.checkpoint as checkpoint
    from llm_jax.train.checkpoint import _OrbaxErrorsOnOneLine

    monkeypatch.setattr(checkpoint, "_SAVE_FAILED", threading.Event())

    def record(error: BaseException) -> logging.LogRecord:
        try:
            raise error
        except type(error):
            return logging.LogRecord("absl", logging.ERROR, "/x/orbax/checkpoint/y.py", 1,
                                     "_SignalingThread.run() raised an exception:\nmore",
                                     None, sys.exc_info())

    quiet = _OrbaxErrorsOnOneLine()
    assert not quiet.filter(record(RuntimeError(message)))
    kept = record(OSError("Not a directory: '/run/checkpoints/4'\nspec..."))
    assert quiet.filter(kept)
    assert kept.getMessage() == ("_SignalingThread.run() raised an exception: (OSError: Not a "
                                 "directory: '/run/checkpoints/4')")
    assert kept.exc_info is None
    checkpoint._SAVE_FAILED.set()
    assert not quiet.filter(record(OSError("Not a directory: '/run/checkpoints/4'")))


def test_futures_a_failed_save_abandoned_stay_off_the_terminal_once_it_is_reported(monkeypatch):
    """asyncio reports an orbax future nobody read when it is collected; after the save's
    failure is out as one CheckpointError that report is dropped, before it (or from other
    code) it is kept."""
    import logging
    import threading

    import llm_jax.train.checkpoint as checkpoint

    def abandoned(filename: str) -> logging.LogRecord:
        scope: dict = {}
        exec(compile("def write():\n    raise ValueError('FAILED_PRECONDITION: zarr')\n",
                     filename, "exec"), scope)
        try:
            scope["write"]()
        except ValueError:
            return logging.LogRecord("asyncio", logging.ERROR, "/x/asyncio/base_events.py", 1,
                                     "Future exception was never retrieved", None, sys.exc_info())

    monkeypatch.setattr(checkpoint, "_SAVE_FAILED", threading.Event())
    quiet = checkpoint._AbandonedSaveFutures()
    orbax_file = "/site-packages/orbax/checkpoint/serialization.py"
    assert quiet.filter(abandoned(orbax_file))  # no failure reported yet: kept
    checkpoint._SAVE_FAILED.set()
    assert not quiet.filter(abandoned(orbax_file))
    assert quiet.filter(abandoned("/site-packages/other/module.py"))  # not orbax's: kept
    # tensorstore's writer sets the error on the future without raising it in Python: no
    # traceback, so asyncio would print only "ValueError: FAILED_PRECONDITION: ..."
    never_raised = ValueError('FAILED_PRECONDITION: Error opening "zarr" driver')
    assert not quiet.filter(logging.LogRecord(
        "asyncio", logging.ERROR, "/x/asyncio/base_events.py", 1,
        "Future exception was never retrieved", None,
        (ValueError, never_raised, never_raised.__traceback__)))

