"""RLHF plumbing: stop rules by hand, the over-optimisation plot, and RL on the chat prompts
with the gold judge beside the optimised reward, the KL tracked, a KL budget that stops the
run, and the plot written."""

import json
from pathlib import Path

import pytest

from llm_jax.rl.overoptimization import StopRules, plot_overoptimization
from llm_jax.tracking.metrics_log import metrics_by_step
from tests.rl.test_rl_trainer import EXPERIMENT, TINY_RL


def test_kl_budget_rule():
    rules = StopRules(kl_budget=2.0)
    assert rules.check({"kl_sequence": 1.9}) is None
    assert "budget" in rules.check({"kl_sequence": 2.1})


def test_gold_patience_rule_counts_evaluations_below_gold_best_while_proxy_rose():
    def reasons(patience, evals):
        rules = StopRules(gold_patience=patience)
        return [rules.check({"eval/proxy_reward": p, "eval/gold_reward": g}) for p, g in evals]

    # gold is best at the second evaluation (proxy 0.2 there); a noisy rebound to 0.55 (and a
    # proxy dip to 0.25) neither resets nor pauses the count, which reaches 3 at the last
    got = reasons(3, [(0.1, 0.5), (0.2, 0.6), (0.3, 0.5), (0.25, 0.55), (0.4, 0.3)])
    assert got[:4] == [None] * 4
    assert "below its best (0.6) for 3 evaluations" in got[4] and "0.2 → 0.4" in got[4]
    # a new best restarts the count
    assert reasons(2, [(0.1, 0.5), (0.2, 0.4), (0.3, 0.7), (0.4, 0.6)]) == [None] * 4
    # both falling is a bad run, not over-optimisation: no stop
    assert reasons(2, [(0.5, 0.6), (0.4, 0.5), (0.3, 0.4), (0.2, 0.3)]) == [None] * 4


def test_plot_needs_both_rewards_and_writes_a_png(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    assert plot_overoptimization(metrics, tmp_path / "p.png") is None  # not logged yet
    metrics.write_text(json.dumps({"step": 1, "reward": 0.1}) + "\n")
    assert plot_overoptimization(metrics, tmp_path / "p.png") is None
    with metrics.open("a") as f:
        for i in range(1, 5):
            f.write(json.dumps({"step": i, "reward/proxy": 0.1 * i, "reward/gold": 0.3 - 0.05 * i,
                                "kl_sequence": 0.5 * i}) + "\n")
    out = plot_overoptimization(metrics, tmp_path / "p.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_rlhf_logs_proxy_gold_and_kl_and_stops_at_the_kl_budget(
        tiny_pretrained_run, tmp_path):
    from llm_jax.cli import main

    run_dir = tmp_path / "rlhf"
    argv = ["train", EXPERIMENT, "--workdir", str(run_dir),
            f"--config.init.from_run={tiny_pretrained_run}", *TINY_RL,
            "--config.rl.task.source=rlhf", "--config.rl.gold=true",
            "--config.rl.track_kl=true", "--config.rl.kl_budget=1e-4",
            "--config.rl.tools=false", "--config.train.steps=5", "--config.train.eval_every=1",
            "--config.train.eval_at_start=true",
            "--config.rl.task.eval_problems=3"]
    assert main(argv) == 0
    rows = metrics_by_step(run_dir)
    last = max(rows)
    assert last < 5, "the KL budget did not stop the run"
    assert rows[last]["stop"] == 1.0 and rows[last]["kl_sequence"] > 1e-4
    for step in range(1, last + 1):
        assert {"reward/proxy", "reward/gold", "kl_sequence"} <= set(rows[step])
        assert rows[step]["reward/proxy"] == rows[step]["reward"]  # the optimised reward
    assert {"eval/proxy_reward", "eval/gold_reward", "eval/response_length"} <= set(rows[last])
    assert "eval/accuracy" not in rows[last] and "accuracy" not in rows[1]
    assert (run_dir / "overoptimization.png").is_file()
    assert Path(run_dir / "checkpoints" / str(last)).is_dir()
