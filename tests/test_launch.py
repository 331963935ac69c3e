"""Launchers print the commands they would run (--dry-run)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _dry(*args):
    run = subprocess.run([sys.executable, str(ROOT / "launch/launch.py"), *args], text=True,
                         timeout=600, capture_output=True)
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_local_dry_run_sets_process_env():
    out = _dry("local", "--processes", "3", "--port", "1234", "--dry-run", "--", "llm-jax",
               "train", "x.py")
    lines = out.strip().splitlines()
    assert len(lines) == 3
    assert "COORDINATOR_ADDRESS=127.0.0.1:1234 NUM_PROCESSES=3 PROCESS_ID=2" in lines[2]


def test_tpu_and_slurm_dry_runs():
    tpu = _dry("tpu", "--tpu", "pod", "--zone", "z", "--dry-run", "--", "llm-jax", "train", "x.py")
    assert "tpu-vm ssh pod --zone=z --worker=all" in tpu and "llm-jax train x.py" in tpu
    slurm = _dry("slurm", "--nodes", "4", "--dry-run", "--", "llm-jax", "train", "x.py")
    assert "#SBATCH --nodes=4" in slurm and "--signal=TERM@120" in slurm
    assert "srun llm-jax train x.py" in slurm
