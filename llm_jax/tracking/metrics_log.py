"""Local JSONL mirrors of what is logged: `metrics.jsonl` and `samples.jsonl` in the run dir.

One JSON object per line, flushed as written, so a crash loses nothing already logged and
`llm-jax compare` works offline. Non-finite floats are written as the strings "nan", "inf" and
"-inf" so every line stays valid JSON.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if hasattr(value, "item"):  # numpy / jax scalars
        return _clean(value.item())
    return value


class JsonlLog:
    """Append-only JSONL file with a `step` on every row."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, step: int, row: Mapping) -> None:
        record = {"step": int(step), **{k: _clean(v) for k, v in row.items()}}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def truncate_after(self, step: int) -> None:
        """Drop rows logged after `step` (a run resumed from an older checkpoint repeats them)."""
        if not self.path.exists():
            return
        keep = [line for line in self.path.read_text(encoding="utf-8").splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= step]
        self.path.write_text("".join(line + "\n" for line in keep), encoding="utf-8")


def read_metrics(path: str | Path) -> list[dict]:
    """Rows of a metrics.jsonl, with "nan"/"inf" strings turned back into floats."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            rows.append({k: float(v) if v in ("nan", "inf", "-inf") else v
                         for k, v in row.items()})
    return rows


def write_samples(log: JsonlLog, step: int, rows: Sequence[Mapping[str, str]]) -> None:
    for row in rows:
        log.write(step, row)
