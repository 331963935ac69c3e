"""add.bayes: an Optuna study in SQLite that survives a killed sweep and resumes."""

import signal
import subprocess
import sys

import optuna

from llm_jax.cli import main
from llm_jax.sweep.runner import SweepState
from tests.sweep.fakes import calls, driver_script, write_experiment

BAYES = ('from llm_jax.sweep import loguniform\n'
         'add.bayes(3, {"optim.lr": loguniform(1e-4, 1e-2), "train.steps": 4}, '
         'objective="eval_loss", seed=0)')


def test_killed_study_resumes_to_three_trials(tmp_path, fake_trials, capsys):
    spec = write_experiment(tmp_path, BAYES)
    sweep_dir = tmp_path / "sw"
    (tmp_path / "kill_at").write_text("2")  # trial 2 of 3 SIGKILLs the sweep
    driver = driver_script(tmp_path, fake_trials)
    killed = subprocess.run([sys.executable, str(driver), "sweep", spec, "--sweep-dir",
                             str(sweep_dir)], capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    first_run = calls(fake_trials)
    storage = f"sqlite:///{sweep_dir / 'optuna.db'}"
    study = optuna.load_study(study_name="exp-sweep", storage=storage)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "RUNNING"]

    assert main(["sweep", spec, "--sweep-dir", str(sweep_dir)]) == 0
    out = capsys.readouterr().out
    second_run = calls(fake_trials)[len(first_run):]
    # the finished trial is not rerun; the interrupted one reruns with the same parameters
    assert first_run[0] not in second_run and second_run[0] == first_run[1]
    assert len(second_run) == 2
    study = optuna.load_study(study_name="exp-sweep", storage=storage)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    records = SweepState(sweep_dir).records()
    assert sorted(r["trial"] for r in records.values()) == [0, 1, 2]
    for trial in study.trials:  # the study's value is the trial's final eval_loss
        (record,) = [r for r in records.values() if r["trial"] == trial.number]
        assert record["metrics"]["eval_loss"] == trial.value
        assert record["overrides"]["train.steps"] == "4"
    assert "eval_loss" in out and out.count(" ok ") >= 3

    # a complete study runs nothing more
    assert main(["sweep", spec, "--sweep-dir", str(sweep_dir)]) == 0
    assert len(calls(fake_trials)) == len(first_run) + 2


def test_failed_trials_are_told_as_failed(tmp_path, fake_trials, capsys):
    from llm_jax.sweep import runner

    spec = write_experiment(tmp_path, BAYES.replace('"eval_loss"', '"missing_metric"'))
    sweep_dir = tmp_path / "sw"
    assert main(["sweep", spec, "--sweep-dir", str(sweep_dir)]) == 0
    study = optuna.load_study(study_name="exp-sweep", storage=f"sqlite:///{sweep_dir}/optuna.db")
    # every trial ran ok but never logged the objective: Optuna counts them as failed
    assert [t.state.name for t in study.trials] == ["FAIL"] * 3
    assert len(calls(fake_trials)) == 3
    records = runner.SweepState(sweep_dir).records().values()
    assert [r["status"] for r in records] == ["ok"] * 3
