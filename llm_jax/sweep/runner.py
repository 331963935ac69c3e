"""Run a sweep's trials as local subprocesses and keep its state in `<sweep_dir>/sweep.jsonl`.

Each trial runs in its own process group (output in `<run dir>/trial.log`). sweep.jsonl gets
a line per status change; a trial's last line is its record. A rerun treats every trial not
ok as to do, resuming it from its checkpoint."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from llm_jax.sweep.space import SweepPlan, Trial
from llm_jax.tracking.compare import final_metrics

log = logging.getLogger(__name__)

STATE_FILE = "sweep.jsonl"
TRIAL_LOG = "trial.log"
POLL_S = 0.1

Command = Callable[[SweepPlan, Trial], list[str]]


def train_command(plan: SweepPlan, trial: Trial) -> list[str]:
    """The trial's `llm-jax train` (through this interpreter, so the same environment runs it).
    The group comes first so a shared `--config.wandb.group=` override still wins."""
    return [sys.executable, "-m", "llm_jax.cli", "train", plan.spec, "--workdir",
            str(trial.run_dir), f"--config.wandb.group={plan.name}", *plan.base_overrides,
            *trial.args()]


class SweepState:
    """`<sweep_dir>/sweep.jsonl`: appended one record per status change; last one wins."""

    def __init__(self, sweep_dir: str | Path):
        self.path = Path(sweep_dir) / STATE_FILE

    def records(self) -> dict[str, dict]:
        """The latest record of each trial, by run name, in first-recorded order."""
        if not self.path.exists():
            return {}
        records: dict[str, dict] = {}
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line torn by a kill mid-write
                continue
            if isinstance(record, dict) and "name" in record:
                records[record["name"]] = record
        return records

    def write(self, trial: Trial, status: str, **fields) -> dict:
        record = {"trial": trial.index, "name": trial.name, "overrides": trial.overrides,
                  "run_dir": str(trial.run_dir), "status": status, **fields}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One write of one line in append mode: concurrent SLURM array tasks never interleave.
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, default=_jsonable) + "\n")
        return record

    def compact(self) -> None:
        """Rewrite the file with one line per trial (write-then-rename: never half a file)."""
        records = self.records()
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(json.dumps(r, default=_jsonable) + "\n"
                               for r in records.values()), encoding="utf-8")
        os.replace(tmp, self.path)


def _jsonable(value):
    return str(value)


def _json_metrics(metrics: Mapping[str, float]) -> dict:
    # NaN/inf as the strings metrics.jsonl uses, so sweep.jsonl stays valid JSON.
    return {k: (v if math.isfinite(v) else str(v)) for k, v in metrics.items()}


def pending_trials(plan: SweepPlan, state: SweepState | None = None) -> list[Trial]:
    """The plan's trials not yet recorded as ok."""
    records = (state or SweepState(plan.sweep_dir)).records()
    return [t for t in plan.trials if records.get(t.name, {}).get("status") != "ok"]


def last_line(path: Path) -> str:
    """The last non-empty line of a trial's log (progress bars redraw with '\\r')."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 8192))
            tail = f.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [s.strip() for s in tail.replace("\r", "\n").splitlines() if s.strip()]
    return lines[-1][:500] if lines else ""


class SweepInterrupted(Exception):  # noqa: N818 - a stop reason, like errors.Preempted
    def __init__(self, signum: int):
        super().__init__(f"sweep stopped by signal {signum}; running trials were stopped "
                         "(they checkpoint); re-run the same command to resume")
        self.signum = signum


class _Running:
    def __init__(self, trial: Trial, proc: subprocess.Popen, logfile, started: float):
        self.trial, self.proc, self.logfile, self.started = trial, proc, logfile, started


class LocalRunner:
    """Up to `parallel` trials at once, `trials` consumed lazily; `on_done(trial, record)` each."""

    def __init__(self, plan: SweepPlan, *, parallel: int = 1, command: Command | None = None):
        self.plan = plan
        self.parallel = parallel
        self.command = command or train_command
        self.state = SweepState(plan.sweep_dir)

    def run(self, trials: Iterable[Trial],
            on_done: Callable[[Trial, dict], None] | None = None) -> list[dict]:
        """Run every trial; returns their final records. SIGINT/SIGTERM stop the running
        trials (one signal each, so they checkpoint) and raise SweepInterrupted."""
        pending = iter(trials)
        running: list[_Running] = []
        done: list[dict] = []
        with _signals_raise() as stopped:
            try:
                while True:
                    if stopped[0] is not None:
                        raise SweepInterrupted(stopped[0])
                    while len(running) < self.parallel:
                        trial = next(pending, None)
                        if trial is None:
                            break
                        running.append(self._start(trial))
                    if not running:
                        break
                    time.sleep(POLL_S)
                    for job in [j for j in running if j.proc.poll() is not None]:
                        running.remove(job)
                        record = self._finish(job)
                        done.append(record)
                        if on_done is not None:
                            on_done(job.trial, record)
            except (SweepInterrupted, KeyboardInterrupt) as e:
                signum = e.signum if isinstance(e, SweepInterrupted) else signal.SIGINT
                self._stop(running, signum, on_done)
                raise SweepInterrupted(signum) from None
        return done

    def run_one(self, trial: Trial) -> dict:
        return self.run([trial])[0]

    def _start(self, trial: Trial) -> _Running:
        trial.run_dir.mkdir(parents=True, exist_ok=True)
        command = self.command(self.plan, trial)
        logfile = open(trial.run_dir / TRIAL_LOG, "ab")  # noqa: SIM115 - closed in _finish
        logfile.write(f"\n$ {shlex.join(command)}\n".encode())
        logfile.flush()
        log.info("trial %d %s: started", trial.index, trial.name)
        self.state.write(trial, "running", started=time.strftime("%Y-%m-%d %H:%M:%S"))
        # A new session: a terminal's Ctrl-C reaches the sweep only, which then signals each
        # trial once (a trainer takes a second signal as "stop now, without a checkpoint").
        proc = subprocess.Popen(command, stdout=logfile, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        return _Running(trial, proc, logfile, time.monotonic())

    def _finish(self, job: _Running, status: str | None = None) -> dict:
        job.logfile.close()
        trial, code = job.trial, job.proc.returncode
        status = status or ("ok" if code == 0 else "failed")
        metrics = _json_metrics(final_metrics(trial.run_dir))
        record = self.state.write(trial, status, returncode=code,
                                  last_line=last_line(trial.run_dir / TRIAL_LOG),
                                  metrics=metrics,
                                  seconds=round(time.monotonic() - job.started, 1))
        if status == "ok":
            log.info("trial %d %s: ok", trial.index, trial.name)
        else:
            log.warning("trial %d %s: %s (exit %s): %s", trial.index, trial.name, status, code,
                        record["last_line"] or f"see {trial.run_dir / TRIAL_LOG}")
        return record

    def _stop(self, running: list[_Running], signum: int, on_done) -> None:
        for job in [j for j in running if j.proc.poll() is not None]:
            running.remove(job)
            record = self._finish(job)  # it ended on its own before the signal
            if on_done is not None:
                on_done(job.trial, record)
        for job in running:
            with contextlib.suppress(ProcessLookupError):
                job.proc.send_signal(signum)
        for job in running:
            try:
                job.proc.wait(timeout=300)
            except subprocess.TimeoutExpired:  # a trial that ignores the signal cannot block us
                job.proc.kill()
                job.proc.wait()
            self._finish(job, status="interrupted")


@contextlib.contextmanager
def _signals_raise():
    """While trials run, SIGTERM and SIGINT set a flag the loop checks (the main thread only:
    signal handlers cannot be installed elsewhere)."""
    stopped: list[int | None] = [None]

    def handle(signum, frame):
        stopped[0] = signum

    previous = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            previous[sig] = signal.signal(sig, handle)
        except ValueError:
            break
    try:
        yield stopped
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def metric_value(record: Mapping, metric: str) -> float | None:
    """A trial record's final `metric` as a float (NaN/inf included), None if not logged."""
    value = (record.get("metrics") or {}).get(metric)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return float(value)
    return float(value) if isinstance(value, int | float) else None


def summary_table(plan: SweepPlan, records: Mapping[str, dict], metric: str,
                  trials: Iterable[Trial] | None = None, maximize: bool = False) -> str:
    """One line per trial: index, overrides, status, the final `metric`; `*` marks the best
    trial that finished ok; a trial that did not gets the last line it printed as a note."""
    trials = list(plan.trials if trials is None else trials)
    values = {t.name: metric_value(records.get(t.name, {}), metric) for t in trials}
    finite = [(v, n) for n, v in values.items() if v is not None and math.isfinite(v)
              and records[n].get("status") == "ok"]
    best = (max(finite) if maximize else min(finite))[1] if finite else None
    rows = [["trial", "overrides", "status", metric, "note"]]
    for t in trials:
        record = records.get(t.name, {})
        status = record.get("status", "pending")
        value = values[t.name]
        note = "" if status in ("ok", "pending") else record.get("last_line", "")[:70]
        rows.append([str(t.index), ",".join(f"{k}={v}" for k, v in t.overrides.items()),
                     status, ("-" if value is None else f"{value:.5g}")
                     + (" *" if t.name == best else ""), note])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
