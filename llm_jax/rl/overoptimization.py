"""Reward over-optimisation made visible: proxy (reward model) vs gold reward against KL.

    reason = StopRules(kl_budget=20.0, gold_patience=3).check(metrics)   # None, or why stop
    plot_overoptimization(run_dir / "metrics.jsonl", run_dir / "overoptimization.png")

Gold rises with the proxy, then falls while the proxy keeps rising (Gao et al. 2022); the
plot uses √KL on x as that paper does."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

from llm_jax.tracking.metrics_log import metrics_by_step

PROXY, GOLD, KL = "reward/proxy", "reward/gold", "kl_sequence"
EVAL_PROXY, EVAL_GOLD = "eval/proxy_reward", "eval/gold_reward"


class StopRules:
    """When an RLHF run should stop early; `check` takes each iteration's metrics in order.

    Gold rule: gold below its best for `gold_patience` evaluations while the proxy stands above
    its value at that best (against the best, so one noisy evaluation does not reset it)."""

    def __init__(self, kl_budget: float = 0.0, gold_patience: int = 0):
        self.kl_budget, self.gold_patience = kl_budget, gold_patience
        self._best: tuple[float, float] | None = None  # (proxy, gold) where gold was best
        self._since_best = 0

    def check(self, metrics: Mapping[str, float]) -> str | None:
        if self.kl_budget and metrics.get(KL, 0.0) > self.kl_budget:
            return f"KL {metrics[KL]:.3g} is over the budget rl.kl_budget={self.kl_budget:g}"
        if self.gold_patience and EVAL_GOLD in metrics and EVAL_PROXY in metrics:
            proxy, gold = metrics[EVAL_PROXY], metrics[EVAL_GOLD]
            if self._best is None or gold >= self._best[1]:
                self._best, self._since_best = (proxy, gold), 0
                return None
            self._since_best += 1
            if self._since_best >= self.gold_patience and proxy > self._best[0]:
                return (f"gold reward has stayed below its best ({self._best[1]:.3g}) for "
                        f"{self._since_best} evaluations while the proxy rose "
                        f"({self._best[0]:.3g} → {proxy:.3g}) (rl.gold_patience)")
        return None


def _moving_average(values: list[float], window: int) -> list[float]:
    half = window // 2
    spans = [values[max(0, i - half):i + half + 1] for i in range(len(values))]
    return [sum(span) / len(span) for span in spans]


def plot_overoptimization(metrics_path: str | Path, out_path: str | Path) -> Path | None:
    """Proxy and gold reward (own y axes) against √KL as PNG; None before both are logged."""
    if not Path(metrics_path).is_file():  # nothing logged yet (the evaluation before iteration 1)
        return None
    by_step = metrics_by_step(metrics_path)  # an iteration's and its evaluation's lines, merged
    rows = [r for r in by_step.values() if PROXY in r and GOLD in r and KL in r]
    if not rows:
        return None
    start = by_step.get(0, {})  # the evaluation before any update: the policy is the reference
    if EVAL_PROXY in start and EVAL_GOLD in start:
        evals = [{KL: 0.0, **start}]
    else:
        evals = []
    evals += sorted((r for r in rows if EVAL_PROXY in r and EVAL_GOLD in r),
                    key=lambda r: r[KL])
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    rows.sort(key=lambda r: r[KL])
    x = [math.sqrt(max(r[KL], 0.0)) for r in rows]
    window = max(1, len(rows) // 8)
    fig, proxy_ax = plt.subplots(figsize=(7, 4.8))
    gold_ax = proxy_ax.twinx()
    for ax, key, eval_key, color, name in ((proxy_ax, PROXY, EVAL_PROXY, "tab:blue",
                                            "proxy (reward model)"),
                                           (gold_ax, GOLD, EVAL_GOLD, "tab:orange", "gold")):
        values = [r[key] for r in rows]
        ax.plot(x, values, ".", color=color, alpha=0.35)
        ax.plot(x, _moving_average(values, window), "-", color=color, label=f"{name}, rollouts")
        if evals:
            ax.plot([math.sqrt(max(r[KL], 0.0)) for r in evals], [r[eval_key] for r in evals],
                    "D", color=color, ms=6, mec="black", label=f"{name}, held-out")
        ax.set_ylabel(f"{name} reward", color=color)
        ax.tick_params(axis="y", colors=color)
    proxy_ax.set_xlabel("√KL(policy ‖ reference), nats")
    proxy_ax.set_title("Reward over-optimisation")
    proxy_ax.grid(alpha=0.3)
    handles = [h for ax in (proxy_ax, gold_ax) for h in ax.get_legend_handles_labels()[0]]
    proxy_ax.legend(handles, [h.get_label() for h in handles], fontsize=8, ncol=2,
                    loc="upper center", bbox_to_anchor=(0.5, -0.16))  # below: no data hidden
    fig.tight_layout()
    out = Path(out_path)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
