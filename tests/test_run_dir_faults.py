"""Real `llm-jax train` runs sharing or losing their run directory: a second launch on a
running directory is refused, a killed run's lock is taken over, a checkpoint directory
replaced mid-run stops the run with one line."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import TINY_RUN_ARGS, corpus_args

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = str(ROOT / "experiments/pretrain_tiny.py")


def _command(workdir, corpus, *extra):
    return [sys.executable, "-m", "llm_jax.cli", "train", EXPERIMENT, "--workdir", str(workdir),
            *TINY_RUN_ARGS, *corpus_args(corpus), "--config.train.sample_every=0",
            "--config.train.eval_every=0", *extra]


def _steps(run_dir) -> list[int]:
    rows = [json.loads(x) for x in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    return [r["step"] for r in rows if "loss" in r]


def _wait_until(predicate, proc, timeout=300.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, proc.communicate(timeout=60)
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _has_rows(path: Path) -> bool:
    return path.exists() and path.read_text().strip() != ""


def test_second_launch_on_a_running_directory_is_refused(corpus, tmp_path):
    steps = ["--config.train.steps=40", "--config.train.checkpoint_every=5"]
    first = subprocess.Popen(_command(tmp_path, corpus, *steps), cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_until(lambda: _has_rows(tmp_path / "metrics.jsonl"), first)
    start = time.monotonic()
    second = subprocess.run(_command(tmp_path, corpus, *steps), cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    took = time.monotonic() - start
    still_running = first.poll() is None
    _, first_err = first.communicate(timeout=600)

    assert still_running, "the first run ended before the second launch was refused"
    assert second.returncode == 1, second.stderr[-2000:]
    assert "Traceback" not in second.stderr
    last = second.stderr.strip().splitlines()[-1]
    assert last.startswith("llm-jax: RunInUseError:") and "in use by" in last
    assert f"pid {first.pid} on host" in last and " since " in last
    assert took < 60, f"refusal took {took:.0f} s"

    assert first.returncode == 0, first_err[-2000:]
    assert _steps(tmp_path) == list(range(1, 41))  # nothing written twice
    assert (tmp_path / "checkpoints" / "40").is_dir()
    assert (tmp_path / "run.lock").read_text() == ""  # released on the way out
    # the checkpoints are intact: the same command restores the last one and stops there
    again = subprocess.run(_command(tmp_path, corpus, *steps), cwd=ROOT, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resumed from iteration 40" in again.stderr


def test_rerun_after_kill_9_takes_the_lock_over_and_resumes(corpus, tmp_path):
    steps = ["--config.train.steps=30", "--config.train.checkpoint_every=3"]
    proc = subprocess.Popen(_command(tmp_path, corpus, *steps), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_until(lambda: (tmp_path / "checkpoints" / "6").exists(), proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert json.loads((tmp_path / "run.lock").read_text())["pid"] == proc.pid  # left behind
    rerun = subprocess.run(_command(tmp_path, corpus, *steps), cwd=ROOT, capture_output=True,
                           text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"from pid {proc.pid} on host" in rerun.stderr and "no longer running" in rerun.stderr
    assert "resumed from iteration" in rerun.stderr
    assert sorted(set(_steps(tmp_path))) == list(range(1, 31))


def test_checkpoint_directory_replaced_mid_run_stops_it_with_one_line(corpus, tmp_path):
    steps = ["--config.train.steps=100000", "--config.train.checkpoint_every=2"]
    proc = subprocess.Popen(_command(tmp_path, corpus, *steps), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    checkpoints = tmp_path / "checkpoints"
    _wait_until(lambda: (checkpoints / "2").exists(), proc)
    checkpoints.rename(tmp_path / "kept")
    checkpoints.write_text("someone else's file\n")
    start = time.monotonic()
    _, err = proc.communicate(timeout=120)
    took = time.monotonic() - start

    assert proc.returncode == 1, err[-2000:]
    assert took < 30, f"the run went on for {took:.0f} s"
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("llm-jax: CheckpointError: saving checkpoint")
    # caught by the check before a save, or by orbax if the swap lands just after it
    assert (f"{checkpoints} is not a directory" in last
            or f"Not a directory: '{checkpoints}/" in last), last
    assert "last complete checkpoint is step" in last
    assert checkpoints.read_text() == "someone else's file\n"  # not written over

    # put the directory back: the run resumes from the checkpoint it had completed
    checkpoints.unlink()
    (tmp_path / "kept").rename(checkpoints)
    saved = max(int(p.name) for p in checkpoints.iterdir() if p.name.isdigit())
    rerun = subprocess.run(_command(tmp_path, corpus, "--config.train.checkpoint_every=2",
                                    f"--config.train.steps={saved}"),
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"resumed from iteration {saved}" in rerun.stderr
