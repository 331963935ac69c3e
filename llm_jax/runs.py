"""The run directory: its layout and its name, defined once for every stage and command.

    runs/<experiment>/<run-name>/
        config.json       the resolved config (+ "parent": where the params came from)
        tokenizer.model   the run's tokenizer (a child stage copies its parent's)
        checkpoints/<n>/  orbax checkpoints, n = the loop's iteration
        metrics.jsonl     every logged iteration          samples.jsonl  sampled text
        summary.json      run-level numbers                wandb/         the W&B run
        report.md         the report card                  run.lock       who runs it now

The run name is the experiment argument (or `run.name`), and for a sweep trial the overrides
that make it, e.g. `runs/grpo_math_tiny/lr=0.0003,beta=0.04`. This module reads no arrays and
imports nothing heavy, so the CLI, the tracker and compare can all use it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from llm_jax.errors import RunError

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
