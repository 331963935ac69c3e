"""Host count never changes the run: 2 processes × 4 CPU devices log the same losses as
1 process × 8 devices, and a run checkpointed on 2 processes resumes on 2 or on 1 with the
losses of an uninterrupted run (launch/launch.py local)."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import TINY_RUN_ARGS, corpus_args

ROOT = Path(__file__).resolve().parents[1]


def _launch(run_dir, corpus, steps, processes):
    command = [sys.executable, str(ROOT / "launch/launch.py"), "local", "--processes",
               str(processes), "--cpu-devices-per-process", str(8 // processes), "--",
               sys.executable, "-m", "llm_jax.cli", "train",
               str(ROOT / "experiments/pretrain_tiny.py"), "--workdir", str(run_dir),
               *TINY_RUN_ARGS, *corpus_args(corpus), f"--config.train.steps={steps}",
               # A constant learning rate: runs stopped early then resumed with more steps
               # follow the same schedule as the uninterrupted one.
               "--config.train.eval_every=2", "--config.optim.schedule=constant",
               "--config.optim.warmup_steps=0"]
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    run = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return run


def _losses(run_dir, key="loss"):
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r[key]) for r in rows if key in r]


def _assert_close(got, want, rtol=1e-5):
    assert [s for s, _ in got] == [s for s, _ in want]
    for (step, a), (_, b) in zip(got, want):
        assert abs(a - b) <= rtol * abs(b), f"step {step}: loss {a} vs {b}"


def test_same_losses_on_any_host_count_and_resume_across_host_counts(corpus, tmp_path):
    whole = tmp_path / "one_process"
    _launch(whole, corpus, 4, processes=1)
    reference = _losses(whole)
    assert [s for s, _ in reference] == [1, 2, 3, 4]

    split = tmp_path / "two_processes"
    first = _launch(split, corpus, 2, processes=2)
    assert "mesh {'data': 8" in first.stderr  # one global mesh over both processes' devices
    # the same tokenizer whatever the host count
    assert (split / "tokenizer.model").read_bytes() == (whole / "tokenizer.model").read_bytes()
    _assert_close(_losses(split), reference[:2])
    # validation batches are global too: each host evaluates its rows of the same batches
    _assert_close(_losses(split, "eval_loss"), _losses(whole, "eval_loss")[:1])

    second = _launch(split, corpus, 3, processes=2)  # 2 processes resume on 2
    assert second.stderr.count("resumed from iteration 2") == 2  # both processes restored
    third = _launch(split, corpus, 4, processes=1)  # and then on 1
    assert "resumed from iteration 3" in third.stderr
    _assert_close(_losses(split), reference)  # written once, by process 0, in order
    evals = dict(_losses(split, "eval_loss"))
    _assert_close([(s, evals[s]) for s in (2, 4)], _losses(whole, "eval_loss"))
    assert (split / "checkpoints" / "4").is_dir()
