"""Report cards: `report.md` with PNG plots, for a run directory and for a pipeline.

    write_report(path)               # run or pipeline, by what the folder holds

Everything comes from the run's own files, so a card can be rewritten at any time. Key numbers
are the logged metrics matching `KEY_METRICS` (first / last / best with step); plots are the
`PLOTS` groups that have data."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llm_jax.errors import RunError
from llm_jax.runs import PIPELINE_FILE, PLOTS_DIR, RunDir
from llm_jax.tracking.compare import best_point, higher_is_better, plot_curves, run_label, series
from llm_jax.tracking.metrics_log import read_metrics

KL_METRIC = r"(^|/)kl(_[a-z]+)?$"  # kl, kl_sequence, ...
# The key numbers, in this order (regexes on metric names). The rest stays in metrics.jsonl.
KEY_METRICS = (r"^eval_loss$", r"^eval_bpb$", r"^loss$", r"^chat/", r"^math/",
               r"accuracy|_acc$|^acc$", r"pass@", r"^reward$", r"gold|proxy", KL_METRIC,
               r"^completions/mean_length$", r"^eval(?!_ppl)", r"^tokens_per_s$")
# A stage's headline in the pipeline's table: the first few of these it logged.
HEADLINE = (r"^eval_loss$", r"^chat/end_rate$", r"^chat/identity_acc$", r"^math/accuracy$",
            r"^eval/accuracy$", r"gold", r"^eval_bpb$", r"accuracy$", r"^completions/mean_length$")
# Which way is better, for the "best" column; a metric matching neither (a length, a count)
# has no best.
LOWER_IS_BETTER = r"(^|[/_])(loss|bpb|ppl|perplexity)$"
HIGHER_IS_BETTER = r"_rate$|has_answer$"
# (file stem, title, y label, metric regex): one PNG per group, each matching metric a curve.
PLOTS = (
    ("loss", "loss (train and held-out)", "nats/token", r"^(loss|eval_loss)$"),
    ("bpb", "held-out bits per byte", "bits/byte", r"^eval_bpb$"),
    ("accuracy", "accuracy and rates", "fraction", r"accuracy|_acc$|pass@|_rate$|has_answer"),
    ("length", "response length", "tokens", r"mean_length$|reply_length$|response_length$"),
    ("reward", "reward", "reward", r"^reward$|^reward/|_reward$"),
)
# Settings worth a line in the card wherever they exist; a stage's whole section follows.
SETTINGS = ("train.steps", "optim.lr", "optim.schedule", "optim.warmup_steps", "lora.rank",
            "data.batch_size", "data.seq_len")
STAGE_FIELDS = ("algorithm", "advantage", "prompts_per_iteration", "group_size",
                "max_new_tokens", "temperature", "kl_coef", "epochs", "minibatches", "beta",
                "margin", "mixture_size", "answer_first", "task.source", "task.levels")
# RL draws its prompts from a task; its data section is unused, so it would only mislead.
NO_DATA_BATCHES = ("rl",)
SAMPLES_SHOWN = 4


# ---------------------------------------------------------------------------- environment


def environment() -> dict[str, str]:
    """Where this process runs: CPU model and cores, JAX version and devices, git commit."""
    import jax

    kinds: dict[str, int] = {}
    for device in jax.devices():
        kinds[device.device_kind] = kinds.get(device.device_kind, 0) + 1
    return {"cpu": f"{cpu_model()} ({len(os.sched_getaffinity(0))} cores usable)",
            "python": platform.python_version(), "jax": jax.__version__,
            "devices": ", ".join(f"{n} × {k}" for k, n in kinds.items()),
            "git commit": _git_commit()}


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> str:
    root = Path(__file__).resolve().parents[2]

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "not a git checkout"
    return commit + (" (with uncommitted changes)" if dirty else "")


# ---------------------------------------------------------------------------- one run


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(_flatten(value, f"{prefix}{key}.") if isinstance(value, dict)
                    else {f"{prefix}{key}": value})
    return flat


def _num(value: float) -> str:
    return f"{value:.4g}"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows)]


def _logged(rows: Sequence[dict]) -> list[str]:
    return [n for n in dict.fromkeys(k for row in rows for k in row if k != "step")
            if series(rows, n)]


def _matching(rows: Sequence[dict], patterns: Sequence[str]) -> list[str]:
    """Logged metric names matching any of `patterns`, ordered by the first they match."""
    ranked = []
    for order, name in enumerate(_logged(rows)):
        rank = next((i for i, p in enumerate(patterns) if re.search(p, name)), None)
        if rank is not None:
            ranked.append((rank, order, name))
    return [name for *_, name in sorted(ranked)]


def key_metrics(rows: Sequence[dict]) -> list[str]:
    """Logged metric names matching `KEY_METRICS`, in its order."""
    return _matching(rows, KEY_METRICS)


def better(name: str) -> str | None:
    """"max", "min", or None where neither is better (a length, a count)."""
    if re.search(HIGHER_IS_BETTER, name) or any(higher_is_better(part)
                                                   for part in name.split("/")):
        return "max"
    return "min" if re.search(LOWER_IS_BETTER, name) else None


def key_numbers(rows: Sequence[dict]) -> list[str]:
    """Markdown table: each key metric's first, last and best value with its step."""
    lines = []
    for name in key_metrics(rows):
        points = series(rows, name)
        direction = better(name)
        best = best_point(points, direction == "max") if direction else None
        lines.append([f"`{name}`", f"{_num(points[0][1])} @{points[0][0]}",
                      f"{_num(points[-1][1])} @{points[-1][0]}",
                      f"{_num(best[1])} @{best[0]} ({direction})" if best else "-"])
    if not lines:
        return ["No metrics logged yet."]
    return _table(["metric", "first", "last", "best"], lines)


def _plot_groups(rows: Sequence[dict], out_dir: Path) -> list[Path]:
    written = []
    names = _logged(rows)
    for stem, title, ylabel, pattern in PLOTS:
        curves = [(n, series(rows, n)) for n in names if re.search(pattern, n)]
        path = plot_curves(curves, out_dir / f"{stem}.png", title=title, ylabel=ylabel)
        if path is not None:
            written.append(path)
    gold = [n for n in names if "gold" in n]
    if gold:
        # Reward over-optimization: the proxy (the reward the policy is trained on, a reward
        # model's score) against the gold judge, by step and, when a KL is logged in the same
        # rows, as the policy drifts from its reference.
        proxy = [n for n in names if "proxy" in n] or [n for n in names if n == "reward"]
        curves = [(n, series(rows, n)) for n in proxy + gold]
        written.append(plot_curves(curves, out_dir / "proxy_gold.png",
                                   title="proxy and gold reward", ylabel="reward"))
        # The sequence-level KL (the policy's whole divergence per reply) when logged.
        kls = sorted((k for k in names if re.search(KL_METRIC, k)
                      and any(_both(r, k, g) for r in rows for g in gold)),
                     key=lambda k: "sequence" not in k)
        if kls:
            kl = kls[0]
            # sorted by KL: a curve of reward against drift, not a path through time
            curves = [(n, sorted((float(r[kl]), float(r[n])) for r in rows if _both(r, kl, n)))
                      for n in proxy + gold]
            written.append(plot_curves(curves, out_dir / "proxy_gold_kl.png",
                                       title=f"proxy and gold reward vs {kl}", xlabel=kl,
                                       ylabel="reward"))
    return [p for p in written if p is not None]


def _both(row: dict, x: str, y: str) -> bool:
    return all(isinstance(row.get(k), int | float) and not isinstance(row.get(k), bool)
               for k in (x, y))


def _model_line(config: dict, summary: dict) -> str:
    model = config.get("model") or {}
    parts = []
    if isinstance(summary.get("n_params"), int | float):
        parts.append(f"{summary['n_params'] / 1e6:.2f}M params")
    shape = [f"{model[k]} {label}" for k, label in (("n_layers", "layers"),
             ("d_model", "d_model"), ("n_heads", "heads"), ("vocab_size", "vocab"))
             if model.get(k) is not None]
    if shape:
        parts.append(", ".join(shape))
    if model.get("norm"):
        parts.append(f"{model.get('norm')}/{model.get('pos')}/{model.get('mlp')}")
    return "; ".join(parts) or "-"


def _settings(config: dict, summary: dict) -> list[str]:
    flat = _flatten(config)
    stage = config.get("stage", "pretrain")
    parent = config.get("parent") or {}
    rows = [["stage", stage], ["model", _model_line(config, summary)]]
    if parent.get("kind") in ("run", "hf"):
        step = f" (step {parent['step']})" if "step" in parent else ""
        rows.append(["parent", f"`{parent.get('path')}`{step}"])
    for key in SETTINGS:
        if key not in flat or (key.startswith("data.") and stage in NO_DATA_BATCHES) \
                or (key == "lora.rank" and not flat[key]):
            continue
        rows.append([f"`{key}`", json.dumps(flat[key])])
    section = config.get(stage)
    for field in STAGE_FIELDS if isinstance(section, dict) else ():
        full = f"{stage}.{field}"
        if full in flat:
            rows.append([f"`{full}`", json.dumps(flat[full])])
    lines = _table(["setting", "value"], rows)
    if isinstance(section, dict):
        lines += ["", f"<details><summary>the whole <code>{stage}</code> section</summary>", ""]
        lines += [f"- `{k}` = `{json.dumps(v)}`" for k, v in _flatten(section, stage + ".")
                  .items()]
        lines += ["", "</details>"]
    return lines


def _fence(text: str, info: str = "text") -> list[str]:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + info, text, fence]


def _inline(text: str) -> str:
    text = " ".join(str(text).split())
    ticks = "``" if "`" in text else "`"
    return f"{ticks} {text} {ticks}" if ticks == "``" else f"`{text}`"


def _samples(run: RunDir) -> list[str]:
    if not run.samples.is_file():
        return ["No samples logged."]
    rows = [r for r in read_metrics(run.samples) if "completion" in r]
    if not rows:
        return ["No samples logged."]
    steps = sorted({r["step"] for r in rows})
    lines = []
    for step in dict.fromkeys([steps[0], steps[-1]]):
        lines.append(f"**step {step}**")
        lines.append("")
        for row in [r for r in rows if r["step"] == step][:SAMPLES_SHOWN]:
            extra = "".join(f", {k} {row[k]}" for k in row
                            if k not in ("step", "prompt", "completion"))
            lines += [f"prompt {_inline(row.get('prompt', ''))}{extra}:", ""]
            lines += [*_fence(str(row["completion"])), ""]
    return lines


def _environment_lines(done: dict) -> list[str]:
    env = done.get("environment")
    note = "recorded when the stage finished"
    if not isinstance(env, dict):
        env, note = environment(), "of the machine that wrote this report"
    return [*_table(["environment", ""], [[k, v] for k, v in env.items()]), "", f"({note})"]


def write_run_report(run_dir: str | Path) -> Path:
    """(Re)write `<run_dir>/report.md` and its plots; returns the report's path."""
    run = RunDir(run_dir)
    config = run.read_config()
    summary, done = _read_json(run.summary), _read_json(run.done)
    rows = read_metrics(run.metrics) if run.metrics.is_file() else []
    stage = config.get("stage", "pretrain")
    status = ("finished" + (f" in {_duration(done['wall_s'])}" if "wall_s" in done else "")
              if done else f"logged up to step {rows[-1]['step']}" if rows else "no metrics yet")
    plots = _plot_groups(rows, run.plots)
    lines = [f"# {run_label(run.path)}: {stage}", "",
             f"Run directory `{run.path}`: {status}.", "",
             "## Environment", "", *_environment_lines(done), "",
             "## Configuration", "", *_settings(config, summary), "",
             "## Key numbers", "", *key_numbers(rows), ""]
    if plots:
        lines += ["## Plots", ""]
        lines += [f"![{p.stem}]({PLOTS_DIR}/{p.name})" for p in plots] + [""]
    lines += ["## Samples", "", *_samples(run)]
    run.report.write_text("\n".join(lines).rstrip() + "\n")
    return run.report


# ---------------------------------------------------------------------------- a pipeline


def _duration(seconds: float) -> str:
    seconds = round(float(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def _headline(rows: Sequence[dict], n: int = 3) -> str:
    parts = []
    for name in _matching(rows, HEADLINE)[:n]:
        points = series(rows, name)
        first, last = points[0], points[-1]
        parts.append(f"`{name}` {_num(last[1])}" if first[0] == last[0] else
                     f"`{name}` {_num(first[1])} → {_num(last[1])}")
    return ", ".join(parts) or "-"


def write_pipeline_report(root: str | Path, rewrite_stages: bool = True) -> Path:
    """Write `<root>/report.md`, rewriting each stage's report (only missing ones unless
    `rewrite_stages`)."""
    root = Path(root)
    manifest = _read_json(root / PIPELINE_FILE)
    stages = manifest.get("stages")
    if not isinstance(stages, list):
        raise RunError(f"{root}: not a pipeline directory (no readable {PIPELINE_FILE})")
    table, sections, total, env = [], [], 0.0, {}
    for stage in stages:
        run = RunDir(root / stage["dir"])
        done = _read_json(run.done)
        rows = read_metrics(run.metrics) if run.metrics.is_file() else []
        if done:
            status = f"done in {_duration(done.get('wall_s', 0))}" + (
                f" (CPU {_duration(done['cpu_s'])}, load {done['load_avg']})"
                if "cpu_s" in done and "load_avg" in done else "")
            total += float(done.get("wall_s", 0))
            env = done.get("environment") or env
        else:
            status = "in progress" if rows else "not run yet"
        link = "-"
        if run.exists():
            if rewrite_stages or not run.report.is_file():
                write_run_report(run.path)
            link = f"[report]({stage['dir']}/report.md)"
            sections += [f"## {stage['index']}. {stage['name']} ({stage['trainer']})", "",
                         f"`{stage['experiment']}` in `{stage['dir']}/`, {status}; "
                         f"the full card: [{stage['dir']}/report.md]({stage['dir']}/report.md).",
                         "", *key_numbers(rows), ""]
            if (run.plots / "loss.png").is_file():
                sections += [f"![loss]({stage['dir']}/{PLOTS_DIR}/loss.png)", ""]
        table.append([stage["index"], stage["name"], stage["trainer"],
                      f"`{Path(stage['experiment']).name}`", status, _headline(rows), link])
    overrides = manifest.get("overrides") or []
    lines = [f"# Pipeline {manifest.get('experiment', root.name)}", "",
             f"Directory `{root}`; overrides: "
             + (" ".join(f"`{o}`" for o in overrides) if overrides else "none") + ".", "",
             *_table(["#", "stage", "trainer", "experiment", "status", "headline", "card"],
                     table), "",
             f"Wall time of the finished stages: {_duration(total)} (each counted from the "
             "invocation that finished it).", "",
             "## Environment", "", *_environment_lines({"environment": env} if env else {}),
             "", *sections]
    path = root / "report.md"
    path.write_text("\n".join(lines).rstrip() + "\n")
    return path


def write_report(path: str | Path) -> Path:
    """A pipeline directory's report (and its stages'), else a run directory's."""
    path = Path(path)
    if (path / PIPELINE_FILE).is_file():
        return write_pipeline_report(path)
    if RunDir(path).exists():
        return write_run_report(path)
    raise RunError(f"{path}: neither a run directory (config.json) nor a pipeline directory "
                   f"({PIPELINE_FILE})")

