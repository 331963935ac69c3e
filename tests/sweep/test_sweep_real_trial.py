"""One sweep trial through the real `llm-jax train` command (no fake trainer): the runner's
subprocess trains, its record holds the trial's own final metrics and its run directory."""

import json

from llm_jax.cli import main
from llm_jax.sweep.runner import SweepState
from tests.helpers import TINY_RUN_ARGS, corpus_args
from tests.sweep.fakes import ROOT


def test_a_trial_trains_through_the_real_train_command(corpus, tmp_path, capsys):
    sweep_dir = tmp_path / "sw"
    code = main(["sweep", str(ROOT / "experiments/pretrain_tiny.py:gpt2"), "--sweep-dir",
                 str(sweep_dir), "--trial", "0", *TINY_RUN_ARGS, *corpus_args(corpus),
                 "--config.train.steps=2", "--config.data.generated.arithmetic=0.0"])
    assert code == 0, capsys.readouterr()
    (record,) = SweepState(sweep_dir).records().values()
    assert record["status"] == "ok" and record["overrides"] == {"optim.lr": "0.001"}
    run_dir = sweep_dir / record["name"]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["optim"]["lr"] == 0.001 and config["train"]["steps"] == 2
    assert config["wandb"]["group"] == "pretrain_tiny-sweep-gpt2"  # the sweep groups its runs
    logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged if "loss" in r] == [1, 2]
    final = [r for r in logged if "eval_loss" in r][-1]
    assert record["metrics"]["eval_loss"] == final["eval_loss"] > 0
    assert (run_dir / "checkpoints" / "2").is_dir()
