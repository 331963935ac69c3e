"""Two JAX processes × 4 CPU devices train one run together (launch/launch.py local)."""

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import TINY_RUN_ARGS, corpus_args

ROOT = Path(__file__).resolve().parents[1]


def _launch(run_dir, corpus, steps):
    command = [sys.executable, str(ROOT / "launch/launch.py"), "local", "--processes", "2",
               "--cpu-devices-per-process", "4", "--", sys.executable, "-m", "llm_jax.cli",
               "train", str(ROOT / "experiments/pretrain_tiny.py"), "--workdir", str(run_dir),
               *TINY_RUN_ARGS, *corpus_args(corpus), f"--config.train.steps={steps}"]
    env = {k: v for k, v in __import__("os").environ.items() if k != "XLA_FLAGS"}
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=600)


def test_two_processes_train_checkpoint_and_resume(corpus, tmp_path):
    first = _launch(tmp_path, corpus, 2)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "mesh {'data': 8" in first.stderr  # one global mesh over both processes' devices
    second = _launch(tmp_path, corpus, 4)
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stderr.count("resumed from step 2") == 2  # both processes restored
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3, 4]  # written once, by process 0
    assert (tmp_path / "checkpoints" / "4").is_dir()
    assert len((tmp_path / "samples.jsonl").read_text().splitlines()) == 4
