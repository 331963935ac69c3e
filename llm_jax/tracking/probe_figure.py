"""The probe figure: a model's held-out probe figures before and after refusal training.

    plot_probe(before, after, Path("probe.png"), title="probe_refusal_tiny")

`before` and `after` are `eval.probe.probe_metrics` dicts (the after one scored against the
before labels); a figure that is NaN (no question of that label) is drawn as an empty bar.
"""

from __future__ import annotations

import math
from pathlib import Path

BARS = (("accuracy", "accuracy", "accuracy"),
        ("refusals on\nunknowns", "refusal_on_unknown", "refusal_on_unknown"),
        ("false refusals\non knowns", "false_refusal_on_known", "false_refusal_on_known"))


def plot_probe(before: dict, after: dict, path: Path, *, title: str = "",
               after_label: str = "after") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    width = 0.38
    for i, (_, before_key, after_key) in enumerate(BARS):
        for offset, values, key, colour, label in (
                (-width / 2, before, before_key, "#9aa5b1", "before"),
                (width / 2, after, after_key, "#2f6fb0", after_label)):
            value = values.get(key, float("nan"))
            shown = 0.0 if math.isnan(value) else value
            ax.bar(i + offset, shown, width, color=colour, label=label if i == 0 else None)
            ax.text(i + offset, shown + 0.02, "n/a" if math.isnan(value) else f"{value:.0%}",
                    ha="center", fontsize=8)
    ax.set_xticks(range(len(BARS)), [b[0] for b in BARS], fontsize=8)
    ax.set_ylim(0, 1.12)
    ax.set_ylabel("held-out probe questions")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
