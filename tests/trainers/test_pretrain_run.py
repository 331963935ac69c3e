"""End-to-end: every experiment file trains 2 steps on CPU; a finished run resumes and extends."""

import json
from pathlib import Path

import pytest

from llm_jax.cli import main
from tests.helpers import TINY_RUN_ARGS as TINY
from tests.helpers import corpus_args as _data_args

ROOT = Path(__file__).resolve().parents[2]

def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("spec", ["pretrain_tiny.py", "pretrain_tiny.py:gpt2",
                                  "pretrain_gpt2_124m.py"])
def test_experiment_runs_two_steps(spec, corpus, tmp_path):
    run_dir = tmp_path / "run"
    argv = ["train", str(ROOT / "experiments" / spec), "--workdir", str(run_dir),
            "--config.train.steps=2", *TINY, *_data_args(corpus)]
    assert main(argv) == 0
    rows = _metrics(run_dir)
    train_rows = [r for r in rows if "loss" in r]
    assert [r["step"] for r in train_rows] == [1, 2]
    assert all(r["loss"] > 0 and "tokens_per_s" in r and "lr" in r for r in train_rows)
    assert any("eval_loss" in r and "eval_bpb" in r for r in rows)
    assert (run_dir / "checkpoints" / "2").is_dir()
    assert (run_dir / "tokenizer.model").is_file()
    config = json.loads((run_dir / "config.json").read_text())
    assert config["train"]["steps"] == 2 and config["model"]["vocab_size"] == 384
    samples = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 2 and all(isinstance(s["completion"], str) for s in samples)
    assert list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))


def test_resume_extends_a_finished_run(corpus, tmp_path, caplog):
    run_dir = tmp_path / "run"
    base = ["train", str(ROOT / "experiments/pretrain_tiny.py"), "--workdir", str(run_dir),
            *TINY, *_data_args(corpus)]
    assert main([*base, "--config.train.steps=2"]) == 0
    with caplog.at_level("INFO"):
        assert main([*base, "--config.train.steps=4"]) == 0
    assert any("resumed from iteration 2" in r.getMessage() for r in caplog.records)
    steps = [r["step"] for r in _metrics(run_dir) if "loss" in r]
    assert steps == [1, 2, 3, 4]
    assert (run_dir / "checkpoints" / "4").is_dir()
