"""`curation_report.md`: what every step took in, let through and removed, and why.

    rows = step_counts(plan)                 # from the executors' saved stats
    write_report(plan, rows, seconds, cores) # the markdown, the PNG bar chart, examples

The counts are the `Counted` stats every task saved (`logs/<stage>/stats/*.json`), summed over
tasks, so the report is the same whichever executor ran the stages. Removed examples are the
first documents each filter's exclusion writer saved under `removed/<step>/`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from llm_jax.curate.plan import CurationPlan
from llm_jax.errors import RunError

REPORT_FILE = "curation_report.md"
CHART_FILE = "removed_by_step.png"
# Stats that tell what went wrong, worth a column of their own in the report.
_NOTES = ("malformed_record", "malformed_html", "clean_error", "timeout", "pii_email", "pii_ip",
          "pii_phone")


@dataclasses.dataclass
class StepCounts:
    stage: str
    label: str
    docs_in: int
    docs_out: int
    chars_in: int
    chars_out: int
    seconds: float  # this step's own time, summed over tasks
    reasons: dict[str, int]  # datatrove's dropped_<reason> and the _NOTES counters

    @property
    def removed(self) -> int:
        return self.docs_in - self.docs_out if self.label != "read" else 0


def _load_stats(stage_logs: Path) -> dict[str, dict]:
    """label -> summed stats dict of one stage (every task's stats/<rank>.json)."""
    files = sorted((stage_logs / "stats").glob("*.json"))
    if not files:
        raise RunError(f"{stage_logs}: no stats saved; has this stage run?")
    summed: dict[str, dict] = {}
    for path in files:
        for step in json.loads(path.read_text()):
            into = summed.setdefault(step["name"], {})
            for key, value in step["stats"].items():
                total = value.get("total", 0) if isinstance(value, dict) else value
                into[key] = into.get(key, 0) + total
    return summed


def step_counts(plan: CurationPlan) -> list[StepCounts]:
    """The counted steps in data-flow order, with their documents, characters and time."""
    rows, by_stage = [], {}
    for stage, label in plan.counted_steps():
        if stage not in by_stage:
            by_stage[stage] = _load_stats(plan.logs_dir / stage)
        s = by_stage[stage].get(label, {})
        reasons = {k.removeprefix("dropped_"): int(v) for k, v in s.items()
                   if k.startswith("dropped_") or k in _NOTES}
        rows.append(StepCounts(stage, label, int(s.get("docs_in", 0)), int(s.get("docs_out", 0)),
                               int(s.get("chars_in", 0)), int(s.get("chars_out", 0)),
                               s.get("wall_ms", 0) / 1000, reasons))
    return rows


def removed_examples(plan: CurationPlan, label: str, k: int, chars: int) -> list[dict]:
    """The first `k` documents step `label` removed: url, reason, text cut to `chars`."""
    examples = []
    for path in sorted((plan.removed_dir / label).glob("*.jsonl")):
        with path.open(encoding="utf-8") as f:
            for line in f:
                doc = json.loads(line)
                meta = doc.get("metadata", {})
                text = " ".join(doc.get("text", "").split())
                examples.append({"url": meta.get("url", doc.get("id", "")),
                                 "reason": meta.get("filter_reason", label),
                                 "text": text[:chars] + ("…" if len(text) > chars else "")})
                if len(examples) >= k:
                    return examples
    return examples


def plot_removed(rows: list[StepCounts], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r for r in rows if r.label != "read"]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    bars = ax.bar([r.label for r in steps], [r.removed for r in steps], color="#c0504d")
    ax.bar_label(bars, fontsize=8)
    ax.set_ylabel("documents removed")
    ax.margins(y=0.15)  # room for the tallest bar's label
    ax.set_title(f"{rows[0].docs_out if rows else 0} documents read → "
                 f"{rows[-1].docs_out if rows else 0} kept")
    ax.tick_params(axis="x", rotation=30, labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _table(rows: list[StepCounts], total_s: float) -> list[str]:
    lines = ["| step | stage | docs in | docs out | removed | chars in | chars out | "
             "time (s) | share of step time | reasons / notes |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        notes = ", ".join(f"{k}: {v}" for k, v in sorted(r.reasons.items())) or ""
        share = f"{100 * r.seconds / total_s:.0f}%" if total_s else "-"
        lines.append(f"| {r.label} | {r.stage} | {r.docs_in:,} | {r.docs_out:,} | "
                     f"{r.removed:,} | {r.chars_in:,} | {r.chars_out:,} | {r.seconds:.2f} | "
                     f"{share} | {notes} |")
    return lines


def write_report(plan: CurationPlan, rows: list[StepCounts], wall_s: float, cores: int,
                 examples_per_filter: int = 3, example_chars: int = 400) -> Path:
    """`curation_report.md` and its bar chart in the run directory; returns the report."""
    read, kept = rows[0].docs_out, rows[-1].docs_out
    step_s = sum(r.seconds for r in rows)
    slowest = max(rows, key=lambda r: r.seconds)
    chart = plot_removed(rows, plan.run_dir / CHART_FILE)
    headline = (f"**{read:,} documents read, {kept:,} kept** ({rows[0].chars_out:,} characters "
                f"in, {rows[-1].chars_out:,} out).")
    if wall_s:  # unknown when the stages ran elsewhere (a SLURM run)
        headline += (f" {wall_s:.1f} s end to end on {cores} core{'s' * (cores != 1)}: "
                     f"{read / wall_s / cores:.1f} documents/s/core.")
    if step_s:
        headline += (f" The slowest step is `{slowest.label}` "
                     f"({100 * slowest.seconds / step_s:.0f}% of the steps' time).")
    lines = [f"# Curation report: {plan.run_dir}", "",
             f"Inputs: {', '.join(plan.inputs)}  ",
             f"Output: {plan.output_dir} (Parquet, column `text`)", "",
             headline, "", *_table(rows, step_s), "",
             f"![documents removed by each step]({chart.name})", "",
             "## Removed examples", ""]
    for r in rows:
        if r.removed <= 0:
            continue
        examples = removed_examples(plan, r.label, examples_per_filter, example_chars)
        if not examples:
            continue
        lines.append(f"### {r.label} ({r.removed:,} removed)")
        lines += [f"- `{e['reason']}` {e['url']}: {e['text']}" for e in examples]
        lines.append("")
    path = plan.run_dir / REPORT_FILE
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
