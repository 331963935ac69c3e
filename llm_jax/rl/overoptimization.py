"""Reward over-optimisation made visible: proxy (reward model) vs gold reward against KL.

    rules = StopRules(kl_budget=20.0, gold_patience=3)
    reason = rules.check(metrics)          # None, or why the RLHF run should stop now
    plot_overoptimization(run_dir / "metrics.jsonl", run_dir / "overoptimization.png")

As a policy climbs a learned reward model, the true ("gold") reward first rises with it, then
falls while the proxy keeps rising: the policy found what the reward model gets wrong (Gao et
al. 2022, "Scaling Laws for Reward Model Overoptimization"). The plot puts both rewards
against the policy's KL from the reference (x axis √KL, as in that paper), so where they part
is visible; the stop rules end a run at a KL budget or once gold has fallen for
`gold_patience` evaluations in a row while the proxy rose.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

PROXY, GOLD, KL = "reward/proxy", "reward/gold", "kl_sequence"
EVAL_PROXY, EVAL_GOLD = "eval/proxy_reward", "eval/gold_reward"


class StopRules:
    """When an RLHF run should stop early; `check` is called with each iteration's metrics
    (and evaluations' metrics) in order."""

    def __init__(self, kl_budget: float = 0.0, gold_patience: int = 0):
        self.kl_budget, self.gold_patience = kl_budget, gold_patience
        self._last: tuple[float, float] | None = None
        self._falls = 0

    def check(self, metrics: Mapping[str, float]) -> str | None:
        if self.kl_budget and metrics.get(KL, 0.0) > self.kl_budget:
            return f"KL {metrics[KL]:.3g} is over the budget rl.kl_budget={self.kl_budget:g}"
        if self.gold_patience and EVAL_GOLD in metrics and EVAL_PROXY in metrics:
            now = (metrics[EVAL_PROXY], metrics[EVAL_GOLD])
            if self._last is not None:
                rose, fell = now[0] > self._last[0], now[1] < self._last[1]
                self._falls = self._falls + 1 if (rose and fell) else 0
            self._last = now
            if self._falls >= self.gold_patience:
                return (f"gold reward fell for {self._falls} evaluations in a row while the "
                        "proxy rose (rl.gold_patience)")
        return None


def _rows(metrics_path: Path) -> list[dict]:
    if not metrics_path.is_file():  # nothing logged yet (the evaluation before iteration 1)
        return []
    rows = []
    for line in metrics_path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue  # a line cut by a crash
    return rows


def plot_overoptimization(metrics_path: str | Path, out_path: str | Path) -> Path | None:
    """Proxy and gold reward of the training rollouts against √KL, saved as PNG; None when
    the run has not logged both rewards and a KL yet."""
    rows = [r for r in _rows(Path(metrics_path)) if PROXY in r and GOLD in r and KL in r]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    x = [math.sqrt(max(r[KL], 0.0)) for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(x, [r[PROXY] for r in rows], "o-", ms=3, label="proxy (reward model)")
    ax.plot(x, [r[GOLD] for r in rows], "s-", ms=3, label="gold")
    ax.set_xlabel("√KL(policy ‖ reference), nats")
    ax.set_ylabel("mean reward of rollouts")
    ax.set_title("Reward over-optimisation")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out = Path(out_path)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
