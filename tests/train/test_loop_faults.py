"""The loop's fault handling: NaN/inf stops (or skips), SIGTERM checkpoints and stops."""

import os
import signal

import jax
import jax.numpy as jnp
import optax
import pytest

from llm_jax.train.checkpoint import Checkpointer
from llm_jax.train.loop import (
    LoopConfig,
    NonFiniteError,
    Preempted,
    batch_iteration,
    run_training,
)
from llm_jax.train.state import TrainState


class Recorder:
    def __init__(self):
        self.rows = []

    def log(self, step, metrics):
        self.rows.append((step, dict(metrics)))

    def log_samples(self, step, rows):
        pass


def _state():
    params = {"w": jnp.ones((4,))}
    return TrainState.create(params, optax.sgd(0.1), jax.random.PRNGKey(0))


def _fake_step(bad_steps=(), on_step=None):
    def step(state, batch):
        n = int(state.step) + 1
        if on_step:
            on_step(n)
        loss = jnp.nan if n in bad_steps else 1.0 / n
        metrics = {"loss": jnp.float32(loss), "grad_norm": jnp.float32(1.0),
                   "finite": jnp.float32(n not in bad_steps)}
        return state.replace(step=state.step + 1), metrics
    return step


def _batches():
    while True:
        yield {"x": 0}


def _run(step, cfg, **kwargs):
    return run_training(_state(), batch_iteration(step, _batches(), lambda b: b), cfg, **kwargs)


def test_nonfinite_stops_naming_step_and_metric(tmp_path):
    ckpt = Checkpointer(tmp_path / "c", save_every=2, async_save=False)
    with pytest.raises(NonFiniteError, match=r"step 5: loss=nan.*last good checkpoint: step 4"):
        _run(_fake_step(bad_steps={5}), LoopConfig(total_iterations=10, log_every=1),
             checkpointer=ckpt)
    assert ckpt.steps() == [2, 4]  # nothing saved after the bad step


def test_nonfinite_skip_counts(tmp_path):
    rec = Recorder()
    state = _run(_fake_step(bad_steps={2, 3}),
                 LoopConfig(total_iterations=4, log_every=1, on_nonfinite="skip"), tracker=rec)
    assert int(state.step) == 4
    assert rec.rows[-1][1]["skipped_steps"] == 2


def test_sigterm_saves_then_stops(tmp_path):
    ckpt = Checkpointer(tmp_path / "c", save_every=100, async_save=False)

    def on_step(n):
        if n == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(Preempted) as info:
        _run(_fake_step(on_step=on_step), LoopConfig(total_iterations=10), checkpointer=ckpt)
    assert info.value.signum == signal.SIGTERM
    assert ckpt.steps() == [3]  # written although off the 100-step interval
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler restored
