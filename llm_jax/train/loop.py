"""The outer training loop every stage reuses.

    state = run_training(state, iteration_fn, LoopConfig(total_iterations=1000), start=0, ...)

It owns eval, samples, metrics, checkpoints (every N iterations and on SIGTERM/SIGINT) and the
NaN guard; `iteration_fn(state) -> (state, metrics)` is one step or a whole RL iteration. The
counter is the iteration (also the checkpoint number); `state.step` counts optimizer updates."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jax
import numpy as np
from tqdm.auto import tqdm

from llm_jax.errors import Preempted, RunError

log = logging.getLogger(__name__)


class NonFiniteError(RunError):
    """A step produced a NaN/inf loss or gradient and the run is set to stop on it."""




@dataclasses.dataclass(frozen=True)
class LoopConfig:
    total_iterations: int
    log_every: int = 10
    eval_every: int = 0  # 0 = only at the end
    eval_at_start: bool = False  # also evaluate the starting params (iteration 0) of a new run
    sample_every: int = 0  # 0 = only at the end
    on_nonfinite: str = "stop"  # stop | skip
    tokens_per_iteration: int = 0
    flops_per_iteration: float = 0.0  # model FLOPs per iteration, for MFU
    peak_flops: float = 0.0  # summed over all devices; 0 = no MFU
    time_budget_s: float = 0.0  # end after the iteration that spends it (0 = no budget)


class _StopSignal:
    """SIGTERM/SIGINT → a flag checked between steps; a second signal ends the process at once."""

    def __init__(self, on_first: Callable[[], None] | None = None):
        self.received: int | None = None
        self._previous = {}
        self._on_first = on_first  # e.g. cap the checkpoint waits still ahead

    def __enter__(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum, frame):
        if self.received is not None:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt  # a second Ctrl-C means "now"
            log.error("second signal %d: stopping now, without a checkpoint", signum)
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.received = signum
        if self._on_first is not None:
            self._on_first()

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _host_scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(np.asarray(v)) for k, v in jax.device_get(dict(metrics)).items()}


def batch_iteration(step_fn: Callable, batches: Iterator, put_batch: Callable) -> Callable:
    """The iteration of a stage that makes one update per batch: next batch, one step."""
    return lambda state: step_fn(state, put_batch(next(batches)))


def run_training(
    state,
    iteration_fn: Callable,
    cfg: LoopConfig,
    *,
    start: int = 0,
    checkpointer=None,
    data_iter: Any = None,
    tracker=None,
    evaluate: Callable[[Any], dict[str, float]] | None = None,
    sample: Callable[[Any], list[dict[str, str]]] | None = None,
    should_stop: Callable[[dict[str, float]], str | None] | None = None,
):
    """Run iterations `start + 1 .. cfg.total_iterations`; returns the final state.

    `data_iter` is saved with each checkpoint; a reason returned by `should_stop` ends the stage."""
    step = start
    if step >= cfg.total_iterations:
        log.info("already at iteration %d of %d; nothing to train", step, cfg.total_iterations)
        return state
    last_good = checkpointer.latest_step() if checkpointer else None
    skipped = 0
    first_step = step + 1
    window_start, window_steps = time.perf_counter(), 0
    main_process = jax.process_index() == 0
    bar = tqdm(total=cfg.total_iterations, initial=step, unit="it", dynamic_ncols=True,
               disable=not main_process)

    def say(text: str) -> None:
        if main_process:
            bar.write(text)

    def log_metrics(step: int, metrics: dict[str, float]) -> None:
        if tracker is not None:
            tracker.log(step, metrics)

    def save(step: int, force: bool = False) -> None:
        nonlocal last_good
        try:
            if checkpointer is not None and checkpointer.save(step, state, data_iter,
                                                              force=force):
                last_good = step
        except Exception:
            bar.close()  # the error is the last line printed, not a progress bar
            raise

    def stop_reason(metrics: dict[str, float]) -> str | None:
        reason = should_stop(metrics) if should_stop is not None else None
        if reason:
            log.warning("stopping at step %d: %s", step, reason)
        return reason

    def evaluate_and_sample(step: int, final: bool) -> str | None:
        """Evaluate and sample when due; a stop reason the evaluation gave."""
        reason = None
        if evaluate is not None and (final or (cfg.eval_every and step % cfg.eval_every == 0)):
            eval_metrics = evaluate(state.params)
            reason = None if final else stop_reason(eval_metrics)
            log_metrics(step, {**eval_metrics, **({"stop": 1.0} if reason else {})})
            say(f"step {step}: " + ", ".join(f"{k}={v:.4f}" for k, v in eval_metrics.items()))
        if sample is not None and (final or (cfg.sample_every and step % cfg.sample_every == 0)):
            rows = sample(state.params)
            if tracker is not None:
                tracker.log_samples(step, rows)
            for row in rows:
                say(f"  [{row['prompt']}]{row['completion']!r}")
        return reason

    if cfg.eval_at_start and step == 0 and evaluate is not None:
        # The "before" numbers: the params this stage starts from (e.g. the base model).
        start_metrics = evaluate(state.params)
        log_metrics(0, start_metrics)
        say("start: " + ", ".join(f"{k}={v:.4f}" for k, v in start_metrics.items()))
    budget_start = time.perf_counter()  # after the "before" evaluation
    with _StopSignal(getattr(checkpointer, "interrupt", None)) as stop:
        while step < cfg.total_iterations:
            state, metrics = iteration_fn(state)
            step += 1
            if should_stop is not None and stop_reason(_host_scalars(metrics)):
                metrics = {**metrics, "stop": 1.0}
            finite = float(jax.device_get(metrics.get("finite", 1.0))) > 0
            if not finite:
                values = _host_scalars(metrics)
                bad = [k for k in ("loss", "grad_norm")
                       if k in values and not math.isfinite(values[k])] or ["finite"]
                if cfg.on_nonfinite == "stop":
                    bar.close()
                    where = (f"last good checkpoint: step {last_good}" if last_good is not None
                             else "no checkpoint was saved yet")
                    raise NonFiniteError(
                        f"step {step}: {', '.join(f'{k}={values[k]}' for k in bad)} is not "
                        f"finite; stopping ({where}). Set train.on_nonfinite=skip to skip such "
                        "updates instead.")
                skipped += 1
                log.warning("step %d: non-finite %s; update skipped (%d so far)", step,
                            ", ".join(bad), skipped)
            window_steps += 1
            bar.update(1)

            if step % cfg.log_every == 0 or step == cfg.total_iterations:
                values = _host_scalars(metrics)
                elapsed = time.perf_counter() - window_start
                step_time = elapsed / window_steps
                values.update(step_time_s=step_time, skipped_steps=float(skipped))
                if cfg.tokens_per_iteration:
                    values["tokens_per_s"] = cfg.tokens_per_iteration / step_time
                if cfg.flops_per_iteration and cfg.peak_flops:
                    values["mfu"] = cfg.flops_per_iteration / step_time / cfg.peak_flops
                log_metrics(step, values)
                if "loss" in values:
                    bar.set_postfix(loss=f"{values['loss']:.3f}", refresh=False)
                window_start, window_steps = time.perf_counter(), 0

            # A stage may end early (an RLHF stop rule): metrics["stop"] > 0 makes this
            # iteration the last, with the final evaluation and save.
            stop_early = float(jax.device_get(metrics.get("stop", 0.0))) > 0
            if stop_early:
                say(f"step {step}: stopping early, as the stage asked")
            elif cfg.time_budget_s and time.perf_counter() - budget_start >= cfg.time_budget_s:
                stop_early = True
                say(f"step {step}: the time budget of {cfg.time_budget_s:g} s is spent")
            final = step == cfg.total_iterations or stop_early
            if evaluate_and_sample(step, final):  # the evaluation was the last one
                say(f"step {step}: stopping early, as the stage asked")
                stop_early = final = True
            save(step, force=final)
            if window_steps == 0 or step == first_step:
                # Keep compilation, eval, sampling and checkpoint writes out of step timings.
                window_start, window_steps = time.perf_counter(), 0
            if stop_early:
                break
            if stop.received is not None and not final:
                save(step, force=True)
                bar.close()
                if checkpointer is not None:
                    checkpointer.wait()
                raise Preempted(f"stopped by signal {stop.received} at step {step}; "
                                "checkpoint saved, re-run the same command to resume",
                                stop.received)
    bar.close()
    if checkpointer is not None:
        checkpointer.wait()  # the final save's failure surfaces here, as CheckpointError
    return state
