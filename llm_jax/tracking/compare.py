"""`llm-jax compare`: runs side by side from their local metrics.jsonl, with no network needed.

For each run and metric the table shows the last logged value and the best (lowest) one with
the step it was reached at; NaN/inf values are never "best". The run's label is `run.name`
from its config.json (else the directory name), prefixed by the parent directory when two
compared runs would otherwise share a label.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

from llm_jax.runs import RunDir
from llm_jax.tracking.metrics_log import MetricsLog, read_metrics


def run_label(run_dir: Path) -> str:
    """`run.name` from the run's config.json when set, else the directory name."""
    try:
        name = json.loads(RunDir(run_dir).config.read_text())["run"]["name"]
    except (OSError, ValueError, KeyError, TypeError):
        name = ""
    return str(name) if name else run_dir.name


def _fmt(value: float) -> str:
    return f"{value:.5g}"


def _cells(rows: list[dict], metric: str) -> str:
    points = [(r["step"], float(r[metric])) for r in rows
              if isinstance(r.get(metric), int | float) and not isinstance(r[metric], bool)]
    if not points:
        return "-"
    last = points[-1][1]
    finite = [p for p in points if math.isfinite(p[1])]
    if not finite:
        return f"{_fmt(last)} / -"
    best_step, best = min(finite, key=lambda p: p[1])  # earliest step wins a tie
    return f"{_fmt(last)} / {_fmt(best)}@{best_step}"


def compare_runs(run_dirs: Sequence[Path], metrics: Sequence[str] = ("loss", "eval_loss")) -> str:
    """Plain-text table: one line per run; per metric "last / best@step"."""
    run_dirs = [Path(d) for d in run_dirs]
    metrics = list(dict.fromkeys(metrics))
    labels = [run_label(d) for d in run_dirs]
    if len(set(labels)) < len(labels):
        labels = [f"{d.parent.name}/{label}" for d, label in zip(run_dirs, labels)]
    table = [["run", "last step", *(f"{m} (last / best@step)" for m in metrics)]]
    for run_dir, label in zip(run_dirs, labels):
        path = run_dir / MetricsLog.filename
        if not path.exists():
            table.append([label, f"no {path}", *("-" for _ in metrics)])
            continue
        rows = read_metrics(path)
        last_step = str(rows[-1]["step"]) if rows else "-"
        table.append([label, last_step, *(_cells(rows, m) for m in metrics)])
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in table)
