"""The DPO stage end to end: the first logged loss is log 2 (policy = reference), TRL's metric
names, held-out preference accuracy, and the gold win rate (exactly 0.5 before training)."""

import math
from pathlib import Path

import pytest

from llm_jax.cli import main
from llm_jax.tracking.metrics_log import metrics_by_step
from tests.trainers.test_reward_model_run import TINY, write_preferences

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT = str(ROOT / "experiments/dpo_tiny.py")
TRL_NAMES = ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins",
             "logps/chosen", "logps/rejected")


@pytest.mark.slow
def test_two_iterations_from_a_preference_file(tiny_pretrained_run, tmp_path):
    run_dir = tmp_path / "dpo"
    argv = ["train", EXPERIMENT, "--workdir", str(run_dir), *TINY,
            f"--config.init.from_run={tiny_pretrained_run}",
            f"--config.data.train_paths={write_preferences(tmp_path / 'prefs.jsonl')}",
            "--config.preferences.heldout_fraction=0.25", "--config.dpo.beta=0.5",
            "--config.evals.gold_win_rate.prompts=4",
            "--config.evals.gold_win_rate.max_new_tokens=8",
            "--config.train.eval_at_start=true"]
    assert main(argv) == 0
    logged = metrics_by_step(run_dir)
    # The policy starts as the reference: Δ = 0 for every pair, so the loss is log 2 ...
    assert abs(logged[1]["loss"] - math.log(2)) < 1e-6
    assert abs(logged[1]["rewards/margins"]) < 1e-6
    assert abs(logged[0]["eval/loss"] - math.log(2)) < 1e-6
    # ... and its greedy replies are its baseline's: all ties, a win rate of exactly 0.5.
    assert logged[0]["gold/win_rate"] == 0.5 and logged[0]["gold/ties"] == 1.0
    assert logged[0]["gold/score"] == logged[0]["gold/baseline_score"]

    for step in (1, 2):
        for key in ("loss", "grad_norm", *TRL_NAMES):
            assert math.isfinite(logged[step][key]), (step, key)
    final = logged[2]
    # The updates moved the policy away from its reference on the same held-out pairs that
    # gave Δ = 0 at the start (same batch, before and after; not two different batches).
    assert abs(final["eval/rewards/margins"]) > 1e-6
    assert abs(final["eval/loss"] - logged[0]["eval/loss"]) > 1e-7
    assert {f"eval/{k}" for k in TRL_NAMES} | {"eval/loss"} <= set(final)
    assert 0.0 <= final["eval/rewards/accuracies"] <= 1.0
    assert {"gold/win_rate", "gold/score", "gold/baseline_score", "gold/ties"} <= set(final)


def test_bad_beta_is_a_config_error(tiny_pretrained_run, tmp_path, capsys):
    argv = ["train", EXPERIMENT, "--workdir", str(tmp_path / "bad"), *TINY,
            f"--config.init.from_run={tiny_pretrained_run}", "--config.dpo.beta=0.0"]
    assert main(argv) == 2
    assert "dpo.beta=0.0 must be > 0" in capsys.readouterr().err
