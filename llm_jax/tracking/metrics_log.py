"""Local JSONL mirrors of what a run logs: `<run_dir>/metrics.jsonl` and `samples.jsonl`.

Each line is flushed on its own, with an integer `step`. Non-finite floats are written as
"nan"/"inf"/"-inf" (bare NaN is not JSON; null would hide a blow-up). `truncate_after(step)`
drops rows past the checkpoint a resumed run starts from."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from llm_jax.runs import METRICS_FILE, SAMPLES_FILE

_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def to_python(value: Any) -> Any:
    """numpy / JAX scalars and arrays → Python scalars and lists; anything else unchanged."""
    if hasattr(value, "tolist") and hasattr(value, "ndim"):
        return value.tolist()
    return value


def json_value(value: Any) -> Any:
    """A value as it is stored in the JSONL files: Python scalars, non-finite floats as strings."""
    value = to_python(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return value


class _JsonlFile:
    """Append-only JSONL file whose rows all carry a `step`."""

    filename = ""

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / self.filename
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._drop_torn_tail()

    def _drop_torn_tail(self) -> None:
        # A process killed mid-write leaves a last line without "\n"; appending to it would glue
        # the next row onto it and make the file invalid from then on.
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        data = self.path.read_bytes()
        if not data.endswith(b"\n"):
            self._replace(data[: data.rfind(b"\n") + 1])

    def _replace(self, data: bytes) -> None:
        # Write-then-rename: a crash during the rewrite leaves the old file, never half of one.
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, self.path)

    def _append(self, rows: Sequence[Mapping[str, Any]]) -> None:
        text = "".join(json.dumps(row, allow_nan=False) + "\n" for row in rows)
        with open(self.path, "a", encoding="utf-8") as f:  # closing flushes to the OS
            f.write(text)

    def truncate_after(self, step: int) -> None:
        """Drop rows after `step`: a run resumed from an older checkpoint logs them again."""
        if not self.path.exists():
            return
        lines = self.path.read_bytes().splitlines(keepends=True)
        keep = [line for line in lines if line.strip() and json.loads(line)["step"] <= step]
        if len(keep) != len(lines):
            self._replace(b"".join(keep))


class MetricsLog(_JsonlFile):
    """`<run_dir>/metrics.jsonl`: one `{"step": int, name: value, ...}` row per `log` call."""

    filename = METRICS_FILE

    def log(self, step: int, metrics: Mapping[str, Any]) -> None:
        row = {"step": int(step)}
        row.update((str(k), json_value(v)) for k, v in metrics.items() if k != "step")
        self._append([row])


class SamplesLog(_JsonlFile):
    """`<run_dir>/samples.jsonl`: one `{"step", "prompt", "completion", ...}` row per sample."""

    filename = SAMPLES_FILE

    def log(self, step: int, rows: Sequence[Mapping[str, Any]]) -> None:
        self._append([{"step": int(step), **{str(k): json_value(v) for k, v in row.items()
                                             if k != "step"}} for row in rows])


def read_metrics(path: str | Path) -> list[dict]:
    """Rows of a metrics.jsonl (file or run dir), non-finite strings back as floats.

    A torn last line is skipped; a bad line anywhere else raises."""
    path = Path(path)
    if path.is_dir():
        path = path / MetricsLog.filename
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = []
    for i, line in enumerate(lines):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise
        rows.append({k: _NONFINITE.get(v, v) if isinstance(v, str) else v
                     for k, v in row.items()})
    return rows


def metrics_by_step(path: str | Path) -> dict[int, dict]:
    """A metrics.jsonl (file or run directory, as `read_metrics`) merged per step: the lines
    logged at one step (an iteration's, its evaluation's) become one dict."""
    by_step: dict[int, dict] = {}
    for row in read_metrics(path):
        by_step.setdefault(row.get("step", -1), {}).update(row)
    return by_step
