"""The sweep declaration as a W&B sweep config, and the trial command a W&B agent runs."""

import pytest
import yaml

from llm_jax.cli import main
from llm_jax.errors import ConfigError
from llm_jax.runs import WANDB_RUN_ID_FILE
from llm_jax.sweep.runner import SweepState
from llm_jax.sweep.space import plan_sweep
from llm_jax.sweep.wandb_sweep import wandb_sweep_config
from tests.sweep.fakes import calls, write_experiment


def _config(tmp_path, body, **kwargs):
    spec = write_experiment(tmp_path, "from llm_jax.sweep import choice, loguniform, randint\n"
                            + body)
    return spec, wandb_sweep_config(plan_sweep(spec, ["--config.train.steps=5"],
                                               sweep_dir=tmp_path / "sw"), **kwargs)


def test_grid_becomes_a_wandb_grid(tmp_path):
    spec, config = _config(tmp_path, 'add.grid({"optim.lr": [1e-3, 2e-3], '
                           '"data.paths": [("a",), ("b", "c")]})', metric="accuracy",
                           maximize=True)
    assert config["method"] == "grid" and config["name"] == "exp-sweep"
    assert config["parameters"] == {"config.optim.lr": {"values": [1e-3, 2e-3]},
                                    "config.data.paths": {"values": [["a"], ["b", "c"]]}}
    assert config["metric"] == {"name": "accuracy", "goal": "maximize"}
    assert config["command"] == ["${env}", "llm-jax", "sweep", spec, "--sweep-dir",
                                 str(tmp_path / "sw"), "--name", "exp-sweep", "--wandb-trial",
                                 "--config.train.steps=5", "${args}"]
    # trials added one by one that form a product are a grid too
    _, listed = _config(tmp_path, 'for lr in (1e-3, 2e-3):\n    add(**{"optim.lr": lr})')
    assert listed["parameters"] == {"config.optim.lr": {"values": [1e-3, 2e-3]}}


def test_random_and_bayes_searches(tmp_path):
    _, random = _config(tmp_path, 'add.random(5, {"optim.lr": loguniform(1e-4, 1e-2), '
                        '"optim.warmup_steps": randint(0, 9), "train.fast": choice(True, False),'
                        ' "train.steps": 7}, seed=3)')
    assert random["method"] == "random" and random["run_cap"] == 5 and "metric" not in random
    assert random["parameters"] == {
        "config.optim.lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-2},
        "config.optim.warmup_steps": {"distribution": "int_uniform", "min": 0, "max": 9},
        "config.train.fast": {"values": [True, False]},
        "config.train.steps": {"value": 7}}
    _, bayes = _config(tmp_path, 'add.bayes(9, {"optim.lr": loguniform(1e-4, 1e-2)}, '
                       'objective="accuracy", direction="maximize")')
    assert bayes["method"] == "bayes" and bayes["run_cap"] == 9
    assert bayes["metric"] == {"name": "accuracy", "goal": "maximize"}


def test_what_a_wandb_sweep_cannot_express(tmp_path):
    with pytest.raises(ConfigError, match="not a full grid"):
        _config(tmp_path, 'add(**{"optim.lr": 1e-3, "train.steps": 1})\n'
                'add(**{"optim.lr": 2e-3, "train.steps": 2})')
    with pytest.raises(ConfigError, match="one search"):
        _config(tmp_path, 'add(**{"optim.lr": 1e-3})\n'
                'add.random(2, {"optim.lr": loguniform(1e-4, 1e-2)})')


def test_cli_writes_the_config_and_creates_nothing_offline(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")  # never reach out to a server from a test
    spec = write_experiment(tmp_path, 'add.grid({"optim.lr": [1e-3, 2e-3]})')
    sweep_dir = tmp_path / "sw"
    assert main(["sweep", spec, "--sweep-dir", str(sweep_dir), "--wandb"]) == 0
    out = capsys.readouterr().out
    written = yaml.safe_load((sweep_dir / "wandb_sweep.yaml").read_text())
    assert written["method"] == "grid" and "not creating the W&B sweep" in out
    assert f"wandb sweep --project p {sweep_dir / 'wandb_sweep.yaml'}" in out
    assert "wandb agent --project p <SWEEP_ID>" in out


def test_an_agent_trial_is_named_by_its_swept_keys(tmp_path, fake_trials, monkeypatch):
    spec = write_experiment(tmp_path, 'add.grid({"optim.lr": [1e-3, 2e-3]})')
    sweep_dir = tmp_path / "sw"
    monkeypatch.setenv("WANDB_RUN_ID", "agent123")
    # what `${args}` expands to, after the command's own shared override
    assert main(["sweep", spec, "--sweep-dir", str(sweep_dir), "--wandb-trial",
                 "--config.train.steps=5", "--config.optim.lr=0.003"]) == 0
    (record,) = SweepState(sweep_dir).records().values()
    assert record["overrides"] == {"optim.lr": "0.003"} and record["status"] == "ok"
    assert calls(fake_trials) == ["default-lr=0.003"]
    run_dir = sweep_dir / "default-lr=0.003"
    assert (run_dir / WANDB_RUN_ID_FILE).read_text().strip() == "agent123"
