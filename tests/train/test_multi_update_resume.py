"""A stage with 3 updates per iteration, killed with kill -9 and rerun, continues bit for bit
and logs by iteration."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ITERATIONS = 18


def _command(workdir: Path) -> list[str]:
    return [sys.executable, "-m", "tests.train.multi_update_stage", str(workdir),
            str(ITERATIONS)]


def _rows(workdir: Path) -> dict[int, dict]:
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    return {r["step"]: r for r in map(json.loads, lines) if "loss" in r}


def test_kill_9_mid_run_continues_bit_for_bit(tmp_path):
    reference = subprocess.run(_command(tmp_path / "ref"), capture_output=True, text=True,
                               cwd=ROOT, timeout=600)
    assert reference.returncode == 0, reference.stderr[-2000:]

    crashed = tmp_path / "crashed"
    proc = subprocess.Popen(_command(crashed), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (crashed / "checkpoints" / "6").is_dir():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert not (crashed / "checkpoints" / str(ITERATIONS)).exists(), "finished before the kill"
    rerun = subprocess.run(_command(crashed), capture_output=True, text=True, cwd=ROOT,
                           timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "resumed from iteration" in rerun.stderr

    ref, got = _rows(tmp_path / "ref"), _rows(crashed)
    assert sorted(got) == list(range(1, ITERATIONS + 1))  # by iteration, none twice
    assert [got[i]["updates"] for i in sorted(got)] == [3.0 * i for i in range(1, ITERATIONS + 1)]
    for i in ref:
        assert (got[i]["loss"], got[i]["first_loss"]) == (ref[i]["loss"], ref[i]["first_loss"])
