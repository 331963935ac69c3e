"""The run directory: its layout and its name, defined once for every stage and command.

    runs/<experiment>/<run-name>/
        config.json       the resolved config (+ "parent": where the params came from)
        checkpoints/<n>/  orbax checkpoints, n = the loop's iteration
        metrics.jsonl, samples.jsonl, summary.json, wandb/, report.md, plots/, tokenizer.model
        run.lock          who runs it now          done.json   a finished pipeline stage

The run name is the experiment argument (or `run.name`) plus a sweep trial's overrides."""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import re
import socket
import time
from collections.abc import Sequence
from pathlib import Path

from llm_jax.errors import RunError, RunInUseError

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
TOKENIZER_FILE = "tokenizer.model"
CHECKPOINTS_DIR = "checkpoints"
METRICS_FILE = "metrics.jsonl"
SAMPLES_FILE = "samples.jsonl"
SUMMARY_FILE = "summary.json"
WANDB_DIR = "wandb"
WANDB_RUN_ID_FILE = "wandb_run_id.txt"
REPORT_FILE = "report.md"
LOCK_FILE = "run.lock"
DONE_FILE = "done.json"
PLOTS_DIR = "plots"
PIPELINE_FILE = "pipeline.json"
RUNS_ROOT = Path("runs")


class RunDir:
    """Paths inside one run directory; nothing is created until a stage writes it."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    config = property(lambda self: self.path / CONFIG_FILE)
    tokenizer = property(lambda self: self.path / TOKENIZER_FILE)
    checkpoints = property(lambda self: self.path / CHECKPOINTS_DIR)
    metrics = property(lambda self: self.path / METRICS_FILE)
    samples = property(lambda self: self.path / SAMPLES_FILE)
    summary = property(lambda self: self.path / SUMMARY_FILE)
    wandb = property(lambda self: self.path / WANDB_DIR)
    report = property(lambda self: self.path / REPORT_FILE)
    lock = property(lambda self: self.path / LOCK_FILE)
    done = property(lambda self: self.path / DONE_FILE)
    plots = property(lambda self: self.path / PLOTS_DIR)

    def exists(self) -> bool:
        return self.config.is_file()

    def read_config(self) -> dict:
        """The saved config.json; a folder without one is not a run directory."""
        if not self.config.is_file():
            raise RunError(f"{self.path}: not a run directory (no {CONFIG_FILE})")
        try:
            return json.loads(self.config.read_text())
        except json.JSONDecodeError as e:
            raise RunError(f"{self.config}:{e.lineno}: not valid JSON ({e.msg})") from None

    def checkpoint_steps(self) -> list[int]:
        """Iterations with a finished checkpoint (orbax names each directory by its step)."""
        if not self.checkpoints.is_dir():
            return []
        return sorted(int(p.name) for p in self.checkpoints.iterdir()
                      if p.is_dir() and p.name.isdigit())


class RunLock:
    """One job per run directory: `run.lock` names the holder while a job runs there.

        lock = RunLock(run_dir.lock).acquire(job="...")   # process 0 of the job
        RunLock(run_dir.lock).join(job="...")             # the job's other processes

    Exclusion is `flock`, which the kernel drops when the holder dies (kill -9 too); the file is
    emptied, never deleted, on release (unlinking would let two processes lock different inodes).
    A record from another host refuses, since its liveness cannot be checked."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def holder(self) -> dict | None:
        """The recorded holder, or None when the lock is free (empty or absent file)."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        return _parse_record(text)

    def acquire(self, job: str = "") -> RunLock:
        """Take the directory for this process (`job` identifies its multi-host job)."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            has_flock = self._flock(fd)
            record = _parse_record(os.pread(fd, 1 << 16, 0).decode(errors="replace"))
            if record is not None:
                self._check_stale(record, has_flock)
            mine = {"host": socket.gethostname(), "pid": os.getpid(),
                    "since": time.strftime("%Y-%m-%d %H:%M:%S %z"), "job": job}
            data = (json.dumps(mine) + "\n").encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
            os.fsync(fd)
        except BaseException:
            os.close(fd)  # closing drops the flock too
            raise
        self._fd = fd
        return self

    def join(self, job: str) -> None:
        """For the other processes of a job whose process 0 holds the lock: refuse unless the
        record names `job` (no record at all means an unshared directory: trust process 0)."""
        record = self.holder()
        if record is not None and record.get("job") != job:
            raise RunInUseError(f"{self.path.parent} is in use by {_describe(record)}, not by "
                                "this job; wait for it to finish or stop it first")

    def release(self) -> None:
        """Empty the record and drop the flock; a no-op when not held."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        except OSError as e:  # the directory may be gone; the flock still goes with the fd
            log.warning("could not clear %s: %s", self.path, e)
        finally:
            os.close(fd)

    def __enter__(self) -> RunLock:
        return self if self.held else self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def _flock(self, fd: int) -> bool:
        """True once locked; False where the filesystem has no flock (then only the record
        guards the directory); RunInUseError when a live process holds it."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            record = _parse_record(os.pread(fd, 1 << 16, 0).decode(errors="replace"))
            who = _describe(record) if record else "another process (starting up)"
            raise RunInUseError(f"{self.path.parent} is in use by {who}; wait for it to "
                                "finish or stop it first (one job per run directory)") from None
        except OSError as e:
            if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                raise
            log.warning("%s: the filesystem cannot lock files (%s); relying on the recorded "
                        "holder only", self.path, e.strerror)
            return False
        return True

    def _check_stale(self, record: dict, has_flock: bool) -> None:
        """Refuse a record we cannot prove dead; log the takeover of one we can."""
        if record.get("host") != socket.gethostname():
            raise RunInUseError(
                f"{self.path.parent} is recorded as in use by {_describe(record)}, which "
                "cannot be checked from this host; if that job is no longer running, delete "
                f"{self.path} and re-run")
        pid = record.get("pid")
        if not has_flock and isinstance(pid, int) and _pid_alive(pid):
            raise RunInUseError(f"{self.path.parent} is in use by {_describe(record)}; wait "
                                "for it to finish or stop it first (one job per run directory)")
        log.warning("taking over %s from %s, which is no longer running", self.path,
                    _describe(record))


def _parse_record(text: str) -> dict | None:
    text = text.strip()
    if not text:
        return None
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return {"host": "?", "pid": "?", "since": "?", "raw": text[:200]}
    return record if isinstance(record, dict) else {"raw": text[:200]}


def _describe(record: dict) -> str:
    return (f"pid {record.get('pid', '?')} on host {record.get('host', '?')} "
            f"since {record.get('since', '?')}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def experiment_name(spec: str) -> str:
    """`experiments/sft_tiny.py:llama` → `sft_tiny`."""
    return Path(spec.partition(":")[0]).stem


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=+-]+", "-", text).strip("-") or "x"


def overrides_name(overrides: Sequence[str] | dict) -> str:
    """A run name from sweep overrides: `lr=0.0003,beta=0.04` (last key part, unless two
    overrides share it, then the whole key)."""
    items = (list(overrides.items()) if isinstance(overrides, dict)
             else [o.removeprefix("--").removeprefix("config.").partition("=")[::2]
                   for o in overrides])
    tails = [str(k).rsplit(".", 1)[-1] for k, _ in items]
    parts = []
    for (key, value), tail in zip(items, tails):
        label = tail if tails.count(tail) == 1 else str(key)
        parts.append(f"{label}={_slug(str(value))}")
    return ",".join(parts)


def run_name(spec: str, name: str = "", overrides: Sequence[str] | dict = ()) -> str:
    """`run.name`, else the experiment argument (else "default"); a sweep trial appends its
    overrides so every trial gets its own directory."""
    base = name or spec.partition(":")[2] or "default"
    extra = overrides_name(overrides) if overrides else ""
    return _slug(f"{base},{extra}" if extra else base)


def default_run_dir(spec: str, name: str = "", overrides: Sequence[str] | dict = (),
                    root: str | Path = RUNS_ROOT) -> RunDir:
    """`runs/<experiment>/<run-name>/` for an experiment reference `path.py[:ARG]`."""
    return RunDir(Path(root) / experiment_name(spec) / run_name(spec, name, overrides))
