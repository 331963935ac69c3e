"""`llm-jax compare`: runs side by side from their local metrics.jsonl (works offline)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from llm_jax.tracking.metrics_log import read_metrics


def _run_name(run_dir: Path) -> str:
    return f"{run_dir.parent.name}/{run_dir.name}"


def compare_runs(run_dirs: Sequence[Path], metrics: Sequence[str] = ("loss", "eval_loss")) -> str:
    """Plain-text table: per run and metric, the last value and the best (lowest) with its step."""
    metrics = list(dict.fromkeys(metrics))
    header = ["run", "steps"] + [f"{m} last / best@step" for m in metrics]
    lines = [header]
    for run_dir in run_dirs:
        run_dir = Path(run_dir)
        rows = read_metrics(run_dir / "metrics.jsonl")
        cells = [_run_name(run_dir), str(max((r["step"] for r in rows), default=0))]
        for metric in metrics:
            points = [(r["step"], r[metric]) for r in rows if isinstance(r.get(metric), float | int)
                      and math.isfinite(r[metric])]
            if not points:
                cells.append("-")
                continue
            best_step, best = min(points, key=lambda p: p[1])
            cells.append(f"{points[-1][1]:.4f} / {best:.4f}@{best_step}")
        lines.append(cells)
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in lines)

