"""Faults injected into real training runs: kill -9, SIGTERM, NaN, bad data, bad config."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import TINY_RUN_ARGS, corpus_args

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = str(ROOT / "experiments/pretrain_tiny.py")


def _command(workdir, corpus, *extra):
    return [sys.executable, "-m", "llm_jax.cli", "train", EXPERIMENT, "--workdir", str(workdir),
            *TINY_RUN_ARGS, *corpus_args(corpus), "--config.train.sample_every=0",
            "--config.train.eval_every=0", *extra]


def _losses(run_dir) -> dict[int, float]:
    rows = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


def _wait_for(path: Path, proc, timeout=300.0):  # generous: the suite runs two workers
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate(timeout=60)
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_kill_9_then_rerun_is_bit_exact(corpus, tmp_path):
    steps = ["--config.train.steps=18", "--config.train.checkpoint_every=3"]
    reference = subprocess.run(_command(tmp_path / "ref", corpus, *steps), capture_output=True,
                               timeout=600, text=True, cwd=ROOT)
    assert reference.returncode == 0, reference.stderr[-2000:]

    crashed = tmp_path / "crashed"
    proc = subprocess.Popen(_command(crashed, corpus, *steps), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _wait_for(crashed / "checkpoints" / "6", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert not (crashed / "checkpoints" / "18").exists(), "run finished before the kill"
    rerun = subprocess.run(_command(crashed, corpus, *steps), capture_output=True, text=True,
                           timeout=600, cwd=ROOT)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "resumed from iteration" in rerun.stderr
    ref, got = _losses(tmp_path / "ref"), _losses(crashed)
    assert sorted(got) == list(range(1, 19))  # no duplicated or missing steps
    assert got == ref  # every loss, before and after the crash, bit for bit


def test_sigterm_checkpoints_and_exits_cleanly(corpus, tmp_path):
    proc = subprocess.Popen(_command(tmp_path, corpus, "--config.train.steps=100000",
                                     "--config.train.checkpoint_every=100000"),
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    _wait_for(tmp_path / "metrics.jsonl", proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert "checkpoint saved" in err and "Traceback" not in err
    saved = [int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit()]
    assert saved and max(saved) == max(_losses(tmp_path))


def test_nan_stops_naming_step_and_metric(corpus, tmp_path):
    from llm_jax.cli import main

    args = ["train", EXPERIMENT, "--workdir", str(tmp_path), *TINY_RUN_ARGS,
            *corpus_args(corpus), "--config.train.steps=6", "--config.optim.lr=1e12",
            "--config.optim.warmup_steps=0", "--config.optim.clip_norm=0.0"]
    assert main(args) == 1
    skipped = main([*args, "--workdir", str(tmp_path / "skip"),
                    "--config.train.on_nonfinite=skip"])
    assert skipped == 0
    rows = [json.loads(x) for x in (tmp_path / "skip/metrics.jsonl").read_text().splitlines()]
    assert max(r.get("skipped_steps", 0) for r in rows) > 0


def test_nan_message(corpus, tmp_path, capsys):
    from llm_jax.cli import main

    main(["train", EXPERIMENT, "--workdir", str(tmp_path), *TINY_RUN_ARGS, *corpus_args(corpus),
          "--config.train.steps=6", "--config.optim.lr=1e12", "--config.optim.warmup_steps=0",
          "--config.optim.clip_norm=0.0"])
    err = capsys.readouterr().err
    assert "NonFiniteError: step" in err and "is not finite" in err
    assert "last good checkpoint: step 2" in err or "no checkpoint was saved yet" in err


@pytest.fixture
def bad_jsonl(tmp_path):
    path = tmp_path / "docs.jsonl"
    good = [json.dumps({"text": "It was a fine day in Bath. " * 40})] * 30
    path.write_text("\n".join(good[:3] + ['{"text": oops'] + good[3:] + ['{"body": "x"}']) + "\n")
    return path


def test_bad_jsonl_names_file_and_line(bad_jsonl, corpus, tmp_path, capsys):
    from llm_jax.cli import main

    base = ["train", EXPERIMENT, *TINY_RUN_ARGS, "--config.train.steps=2",
            f"--config.data.train_paths={bad_jsonl}", f"--config.data.val_paths={corpus['val']}"]
    assert main([*base, "--workdir", str(tmp_path / "a")]) == 1
    assert f"{bad_jsonl}:4: invalid JSON" in capsys.readouterr().err
    assert main([*base, "--workdir", str(tmp_path / "b"), "--config.data.skip_bad=true"]) == 0


def test_missing_tokenizer_is_named(corpus, tmp_path, capsys):
    from llm_jax.cli import main

    code = main(["train", EXPERIMENT, "--workdir", str(tmp_path), *TINY_RUN_ARGS,
                 *corpus_args(corpus), "--config.data.tokenizer_path=/nowhere/tok.model"])
    assert code == 1
    assert "/nowhere/tok.model: tokenizer model not found" in capsys.readouterr().err


def test_config_errors_in_a_subprocess_are_one_line(tmp_path):
    env = dict(os.environ)
    run = subprocess.run([sys.executable, "-m", "llm_jax.cli", "train", EXPERIMENT,
                          "--config.optim.lrr=1"], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=600)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1].endswith("did you mean 'optim.lr'?")
    assert "Traceback" not in run.stderr
