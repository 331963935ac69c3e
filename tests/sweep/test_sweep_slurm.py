"""`llm-jax sweep --backend slurm`: one job array, one trial per task, submitted by sbatch."""

import os
import re
import shlex

from llm_jax.cli import main
from llm_jax.sweep.runner import SweepState
from llm_jax.sweep.space import plan_sweep
from tests.sweep.fakes import write_experiment

GRID = 'add.grid({"optim.lr": [0.001, 0.002, 0.004], "optim.warmup_steps": [0, 10]})'


def _script(capsys, *args) -> str:
    assert main(["sweep", *args, "--backend", "slurm", "--dry-run"]) == 0
    return capsys.readouterr().out


def test_dry_run_prints_one_array_task_per_trial(tmp_path, capsys):
    spec = write_experiment(tmp_path, GRID)
    sweep_dir = tmp_path / "sw"
    script = _script(capsys, spec, "--sweep-dir", str(sweep_dir), "--parallel", "2",
                     "--slurm-arg=--partition=gpu", "--slurm-arg", "time=01:00:00",
                     "--config.train.steps=5")
    assert script.startswith("#!/bin/bash\n")
    assert "#SBATCH --array=0-5%2\n" in script
    assert "#SBATCH --partition=gpu\n" in script and "#SBATCH --time=01:00:00\n" in script
    assert "#SBATCH --job-name=exp-sweep\n" in script and "--signal=B:TERM@120" in script
    plan = plan_sweep(spec, ["--config.train.steps=5"], sweep_dir=sweep_dir)
    cases = re.findall(r"^  (\d+)\) trial=(.+) ;;$", script, re.M)
    assert [(int(i), shlex.split(name)[0]) for i, name in cases] == [
        (t.index, t.name) for t in plan.trials]
    execs = [line for line in script.splitlines() if line.startswith("exec ")]
    assert execs == [f"exec llm-jax sweep {spec} --sweep-dir {sweep_dir} --name exp-sweep "
                     '--config.train.steps=5 --trial "$trial"']
    assert not sweep_dir.exists()  # a dry run writes nothing


def test_finished_trials_are_left_out_and_sbatch_submits(tmp_path, capsys, monkeypatch):
    spec = write_experiment(tmp_path, GRID)
    sweep_dir = tmp_path / "sw"
    plan = plan_sweep(spec, sweep_dir=sweep_dir)
    SweepState(sweep_dir).write(plan.trials[0], "ok", returncode=0)
    script = _script(capsys, spec, "--sweep-dir", str(sweep_dir))
    assert "#SBATCH --array=0-4\n" in script and f"trial={plan.trials[0].name}" not in script
    assert "  0) trial=" + shlex.quote(plan.trials[1].name) + " ;;" in script

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"
    sbatch.write_text('#!/bin/sh\necho "$1" > "$(dirname "$0")/submitted"\n'
                      'echo "Submitted batch job 42"\n')
    sbatch.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    assert main(["sweep", spec, "--sweep-dir", str(sweep_dir), "--backend", "slurm"]) == 0
    assert "Submitted batch job 42" in capsys.readouterr().out
    written = sweep_dir / "sweep.sbatch"
    assert (bin_dir / "submitted").read_text().strip() == str(written)
    assert written.read_text() == script


def test_missing_sbatch_is_one_line(tmp_path, capsys, monkeypatch):
    spec = write_experiment(tmp_path, GRID)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    assert main(["sweep", spec, "--sweep-dir", str(tmp_path / "sw"), "--backend", "slurm"]) == 1
    assert "sbatch not found" in capsys.readouterr().err
