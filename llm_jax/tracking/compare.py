"""`llm-jax compare`: runs side by side from their local files, with no network needed.

    print(compare_runs(run_dirs, metrics=("loss", "eval_loss")))

One line per run: differing config keys, last step, and per metric "last / best@step". Best
is the minimum, or the maximum for scores (names matching `_SCORE`, `pass@*`; `maximize=`
adds names); NaN/inf is never best. A W&B link is listed only for a run that reached a server."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from llm_jax.runs import WANDB_RUN_ID_FILE, RunDir
from llm_jax.tracking.metrics_log import MetricsLog, read_metrics

_SCORE = r"(accuracy|acc|reward|score|win_rate|mfu|tokens_per_s|tokens_per_sec)"
_HIGHER_IS_BETTER = re.compile(rf"^(?:.*_)?{_SCORE}$|^pass@")
# With more differing config keys than this, they get a table of their own (keys as rows).
MAX_KEY_COLUMNS = 5


def higher_is_better(metric: str, maximize: Iterable[str] = ()) -> bool:
    return metric in set(maximize) or bool(_HIGHER_IS_BETTER.match(metric.rsplit("/", 1)[-1]))


def run_label(run_dir: Path) -> str:
    """`run.name` from the run's config.json when set, else the directory name."""
    try:
        name = json.loads(RunDir(run_dir).config.read_text())["run"]["name"]
    except (OSError, ValueError, KeyError, TypeError):
        name = ""
    return str(name) if name else run_dir.name


def _labels(run_dirs: Sequence[Path]) -> list[str]:
    labels = [run_label(d) for d in run_dirs]
    if len(set(labels)) < len(labels):
        labels = [f"{d.parent.name}/{label}" for d, label in zip(run_dirs, labels)]
    return labels


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _read_rows(run_dir: Path) -> list[dict] | None:
    path = Path(run_dir) / MetricsLog.filename
    return read_metrics(path) if path.exists() else None


def series(rows: Sequence[dict], metric: str) -> list[tuple[int, float]]:
    """(step, value) for every row that logged `metric`."""
    return [(r["step"], float(r[metric])) for r in rows if _number(r.get(metric))]


def final_metrics(run_dir: str | Path) -> dict[str, float]:
    """The last logged value of every numeric metric in a run's metrics.jsonl ({} without one)."""
    final: dict[str, float] = {}
    for row in _read_rows(Path(run_dir)) or []:
        final.update((k, float(v)) for k, v in row.items() if k != "step" and _number(v))
    return final


def best_point(points: Sequence[tuple[int, float]], maximize: bool) -> tuple[int, float] | None:
    """The best finite (step, value); the earliest step wins a tie."""
    finite = [p for p in points if math.isfinite(p[1])]
    if not finite:
        return None
    return (max if maximize else min)(finite, key=lambda p: p[1])


def _fmt(value: float) -> str:
    return f"{value:.5g}"


def _cells(rows: list[dict], metric: str, maximize: bool) -> str:
    points = series(rows, metric)
    if not points:
        return "-"
    best = best_point(points, maximize)
    last = _fmt(points[-1][1])
    return f"{last} / -" if best is None else f"{last} / {_fmt(best[1])}@{best[0]}"


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """`{"optim": {"lr": 1e-3}}` → `{"optim.lr": 1e-3}`; lists and scalars are leaves."""
    if not isinstance(tree, dict):
        return {prefix: tree} if prefix else {}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(flatten(value, f"{prefix}{key}.") if isinstance(value, dict) and value
                    else {f"{prefix}{key}": value})
    return flat


def differing_keys(configs: Sequence[dict]) -> list[str]:
    """Flattened config keys whose values are not the same in every config (missing counts)."""
    flats = [flatten(c) for c in configs]
    keys = sorted(set().union(*flats)) if flats else []
    missing = object()
    return [k for k in keys
            if len({json.dumps(f.get(k, missing), sort_keys=True, default=repr)
                    for f in flats}) > 1]


def _read_config(run_dir: Path) -> dict:
    try:
        config = json.loads(RunDir(run_dir).config.read_text())
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def _show(value: Any, width: int = 28) -> str:
    text = "-" if value is None else (value if isinstance(value, str) else json.dumps(value))
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


def compare_runs(run_dirs: Sequence[Path], metrics: Sequence[str] = ("loss", "eval_loss"),
                 maximize: Iterable[str] = ()) -> str:
    """Plain-text table: one line per run; its differing config values; per metric
    "last / best@step"; then the W&B links of runs that have one."""
    run_dirs = [Path(d) for d in run_dirs]
    metrics = list(dict.fromkeys(metrics))
    maximize = set(maximize)
    labels = _labels(run_dirs)
    flats = [flatten(_read_config(d)) for d in run_dirs]
    keys = differing_keys([_read_config(d) for d in run_dirs]) if len(run_dirs) > 1 else []
    key_columns = keys if len(keys) <= MAX_KEY_COLUMNS else []
    header = ["run", *key_columns, "last step"]
    header += [f"{m} (last / {'max' if higher_is_better(m, maximize) else 'min'}@step)"
               for m in metrics]
    table = [header]
    for run_dir, label, flat in zip(run_dirs, labels, flats):
        settings = [_show(flat.get(k)) for k in key_columns]
        rows = _read_rows(run_dir)
        if rows is None:
            table.append([label, *settings, f"no {run_dir / MetricsLog.filename}",
                          *("-" for _ in metrics)])
            continue
        last_step = str(rows[-1]["step"]) if rows else "-"
        table.append([label, *settings, last_step,
                      *(_cells(rows, m, higher_is_better(m, maximize)) for m in metrics)])
    parts = [_table(table)]
    if keys and not key_columns:
        parts.append("config differences:\n" + _table(
            [["key", *labels], *([k, *(_show(f.get(k)) for f in flats)] for k in keys)]))
    links = [(label, link) for label, d in zip(labels, run_dirs)
             if (link := wandb_link(d)) is not None]
    if links:
        parts.append("W&B:\n" + _table([[label, link] for label, link in links]))
    return "\n\n".join(parts)


def plot_compare(run_dirs: Sequence[Path], metrics: Sequence[str], out_dir: Path) -> list[Path]:
    """One PNG per metric, `<out_dir>/<metric>.png`: every run's curve vs step, overlaid.
    Metrics no run logged get no file. Returns the files written."""
    run_dirs = [Path(d) for d in run_dirs]
    labels = _labels(run_dirs)
    runs = [(label, _read_rows(d) or []) for label, d in zip(labels, run_dirs)]
    written = []
    for metric in dict.fromkeys(metrics):
        path = plot_curves([(label, series(rows, metric)) for label, rows in runs],
                           Path(out_dir) / plot_file_name(metric), title=metric, ylabel=metric)
        if path is not None:
            written.append(path)
    return written


def plot_file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._@=-]+", "_", name) + ".png"


def plot_curves(curves: Sequence[tuple[str, Sequence[tuple[float, float]]]], path: Path, *,
                title: str, xlabel: str = "step", ylabel: str = "") -> Path | None:
    """One PNG of labelled (x, y) curves at `path`; None (and no file) when all are empty.
    The one plotting path: compare overlays runs, report cards overlay a run's metrics."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: no global figure state, no display
    from matplotlib.ticker import MaxNLocator

    if not any(points for _, points in curves):
        return None
    fig = Figure(figsize=(7, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for label, points in curves:
        if points:
            xs, values = zip(*points)
            # inf would stretch the axis to nothing; as NaN it is a gap in the line
            ax.plot(xs, [v if math.isfinite(v) else math.nan for v in values],
                    label=label, marker="." if len(points) < 30 else None)
    ax.set_xlabel(xlabel)
    if xlabel == "step":
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def sweep_run_dirs(sweep_dir: Path) -> list[Path]:
    """A sweep's trial run directories: from its sweep.jsonl in trial order, else every
    sub-folder holding a config.json."""
    sweep_dir = Path(sweep_dir)
    state = sweep_dir / "sweep.jsonl"
    found: dict[str, int] = {}
    if state.exists():
        for line in state.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
                found[record["run_dir"]] = int(record.get("trial", len(found)))
            except (ValueError, KeyError, TypeError):
                continue
    dirs = [Path(d) for d, _ in sorted(found.items(), key=lambda kv: kv[1])
            if RunDir(d).exists() or (Path(d) / MetricsLog.filename).exists()]
    if not dirs:
        dirs = sorted(p.parent for p in sweep_dir.glob("*/config.json"))
    return dirs


def wandb_link(run_dir: Path) -> str | None:
    """The run's W&B page when the run reached a W&B server, else None (see module doc)."""
    run = RunDir(run_dir)
    try:
        url = json.loads(run.summary.read_text()).get("wandb_url")
    except (OSError, ValueError, AttributeError):
        url = None
    if isinstance(url, str) and url.startswith("http"):
        return url
    id_file = run.path / WANDB_RUN_ID_FILE
    run_id = id_file.read_text().strip() if id_file.is_file() else ""
    if not run_id or not run.wandb.is_dir():
        return None
    synced = [*run.wandb.glob(f"run-*-{run_id}"),
              *(p.parent for p in run.wandb.glob(f"offline-run-*-{run_id}/*.wandb.synced"))]
    for folder in synced:
        path = _recorded_run_path(folder / "logs" / "debug.log", run_id)
        if path is not None:
            return f"{_app_url()}/{path[0]}/{path[1]}/runs/{run_id}"
    return None


def _recorded_run_path(debug_log: Path, run_id: str) -> tuple[str, str] | None:
    """(entity, project) from wandb's "finishing run ENTITY/PROJECT/ID" log line."""
    try:
        text = debug_log.read_text(errors="replace")
    except OSError:
        return None
    match = re.search(rf"finishing run ([^/\s]+)/([^/\s]+)/{re.escape(run_id)}\b", text)
    return (match.group(1), match.group(2)) if match else None


def _app_url() -> str:
    """The W&B web app of the server configured here (WANDB_APP_URL, else from the API URL)."""
    # The environment first: wandb's settings singleton keeps what it read when this process
    # first touched wandb, which may predate the variable.
    if os.environ.get("WANDB_APP_URL"):
        return os.environ["WANDB_APP_URL"].rstrip("/")
    from wandb.sdk import wandb_setup

    return wandb_setup.singleton().settings.app_url.rstrip("/")
