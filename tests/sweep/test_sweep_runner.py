"""The local sweep runner: real subprocesses (fake_trial.py), sweep.jsonl, failures, resume."""

import json
import signal
import subprocess
import sys
import time

from llm_jax.cli import main
from llm_jax.sweep.runner import STATE_FILE, TRIAL_LOG, SweepState
from tests.sweep.fakes import calls, driver_script, write_experiment

GRID = 'add.grid({"optim.lr": [0.001, 0.666, 0.01]})'


def _records(sweep_dir):
    return SweepState(sweep_dir).records()


def test_a_failing_trial_is_recorded_and_the_others_finish(tmp_path, fake_trials, capsys):
    spec = write_experiment(tmp_path, GRID)
    sweep_dir = tmp_path / "sw"
    code = main(["sweep", spec, "--sweep-dir", str(sweep_dir), "--parallel", "2",
                 "--config.train.steps=5"])
    out = capsys.readouterr().out
    assert code == 1  # some trial failed: non-zero, after the summary
    records = _records(sweep_dir)
    by_lr = {r["overrides"]["optim.lr"]: r for r in records.values()}
    assert {lr: r["status"] for lr, r in by_lr.items()} == {
        "0.001": "ok", "0.666": "failed", "0.01": "ok"}
    failed = by_lr["0.666"]
    assert failed["returncode"] == 3 and "ValueError: boom" in failed["last_line"]
    assert by_lr["0.01"]["metrics"]["eval_loss"] == 1.0 and by_lr["0.001"]["returncode"] == 0
    log = (sweep_dir / by_lr["0.01"]["name"] / TRIAL_LOG).read_text()
    assert log.count("training with lr=0.01") == 1
    # one line per trial after the sweep (the file is compacted)
    assert len((sweep_dir / STATE_FILE).read_text().splitlines()) == 3
    # the summary: every trial, its status and key metric; the best one starred
    table = out[out.index("trial  overrides"):]
    assert "optim.lr=0.666  failed" in table and "ValueError: boom" in table
    assert "optim.lr=0.001  ok      0 *" in table
    assert "1 of 3 trials did not finish ok" in out
    assert len(calls(fake_trials)) == 3


def test_rerun_skips_finished_trials(tmp_path, fake_trials, capsys):
    spec = write_experiment(tmp_path, 'add.grid({"optim.lr": [0.001, 0.01]})')
    sweep_dir = tmp_path / "sw"
    assert main(["sweep", spec, "--sweep-dir", str(sweep_dir)]) == 0
    assert main(["sweep", spec, "--sweep-dir", str(sweep_dir)]) == 0
    assert len(calls(fake_trials)) == 2
    assert "0 of 2 trials to run" in capsys.readouterr().out


def test_a_killed_sweep_resumes_without_rerunning_finished_trials(tmp_path, fake_trials):
    spec = write_experiment(tmp_path, 'add.grid({"optim.lr": [0.001, 0.01, 0.1]})')
    sweep_dir = tmp_path / "sw"
    (tmp_path / "kill_at").write_text("2")  # the second trial SIGKILLs the sweep process
    driver = driver_script(tmp_path, fake_trials)
    killed = subprocess.run([sys.executable, str(driver), "sweep", spec, "--sweep-dir",
                             str(sweep_dir)], capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    names = calls(fake_trials)
    assert len(names) == 2
    left = {r["name"]: r["status"] for r in _records(sweep_dir).values()}
    assert left == {names[0]: "ok", names[1]: "running"}

    assert main(["sweep", spec, "--sweep-dir", str(sweep_dir)]) == 0
    again = calls(fake_trials)[2:]
    assert names[0] not in again and again[0] == names[1] and len(again) == 2
    assert {r["status"] for r in _records(sweep_dir).values()} == {"ok"}


def test_sigterm_stops_running_trials_and_records_them(tmp_path, fake_trials):
    spec = write_experiment(tmp_path, 'add.grid({"optim.lr": [0.001, 0.01]})')
    sweep_dir = tmp_path / "sw"
    driver = driver_script(tmp_path, fake_trials)
    # A trial that runs until signalled: fake_trial.py reads optim.lr, so stall it first.
    slow = tmp_path / "slow_trial.py"
    slow.write_text("import sys, time, pathlib\n"
                    "pathlib.Path(sys.argv[2], 'started').write_text('')\n"
                    "time.sleep(60)\n")
    driver.write_text(driver.read_text().replace(
        "from llm_jax.commands.sweep import add_commands",
        f"runner.train_command = lambda plan, t: [sys.executable, {str(slow)!r}, 'x', "
        "str(t.run_dir)]\nfrom llm_jax.commands.sweep import add_commands"))
    proc = subprocess.Popen([sys.executable, str(driver), "sweep", spec, "--sweep-dir",
                             str(sweep_dir), "--parallel", "2"], stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 60
    while len(list(sweep_dir.glob("*/started"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "re-run the same command to resume" in err
    records = _records(sweep_dir).values()
    assert [r["status"] for r in records] == ["interrupted", "interrupted"]
    assert all(r["returncode"] == -signal.SIGTERM for r in records)


def test_dry_run_lists_trials_and_runs_nothing(tmp_path, fake_trials, capsys):
    spec = write_experiment(tmp_path, GRID)
    sweep_dir = tmp_path / "sw"
    assert main(["sweep", spec, "--sweep-dir", str(sweep_dir), "--dry-run",
                 "--config.train.steps=5"]) == 0
    out = capsys.readouterr().out
    assert out.count("pending") == 3 and "--config.optim.lr=0.666" in out
    assert str(sweep_dir / "default-lr=0.001") in out and "--config.train.steps=5" in out
    assert not sweep_dir.exists() and calls(fake_trials) == []


def test_one_trial_by_index_and_bad_parallel(tmp_path, fake_trials, capsys):
    spec = write_experiment(tmp_path, GRID)
    sweep_dir = tmp_path / "sw"
    assert main(["sweep", spec, "--sweep-dir", str(sweep_dir), "--trial", "2"]) == 0
    assert main(["sweep", spec, "--sweep-dir", str(sweep_dir), "--trial", "2"]) == 0
    assert main(["sweep", spec, "--sweep-dir", str(sweep_dir), "--trial", "1"]) == 1
    out = capsys.readouterr().out
    assert "already finished ok" in out and len(calls(fake_trials)) == 2
    assert main(["sweep", spec, "--parallel", "0"]) == 2
    assert "--parallel must be at least 1" in capsys.readouterr().err
    record = json.loads((sweep_dir / STATE_FILE).read_text().splitlines()[-1])
    assert record["status"] == "failed" and record["trial"] == 1
