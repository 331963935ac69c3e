"""Experiment loading, typed overrides, and one-line errors for typos."""

import json
from pathlib import Path

import pytest

from llm_jax.config import ConfigError, apply_overrides, get_experiment_config, save_config

ROOT = Path(__file__).resolve().parents[1]
# Files declaring only a pipeline() are planned in tests/test_pipeline.py.
EXPERIMENTS = sorted(p for p in (ROOT / "experiments").glob("*.py")
                     if "def get_config(" in p.read_text())


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_every_experiment_loads_locked(path):
    config = get_experiment_config(str(path))
    if config.stage == "curate":  # data curation (llm-jax data prepare): no training steps
        assert config.input.format and config.executor.tasks > 0
    else:
        assert config.train.steps > 0
    with pytest.raises(AttributeError):
        config.stepz = 3  # locked: a typo in code fails too


def test_overrides_are_typed():
    config = get_experiment_config(str(ROOT / "experiments/pretrain_tiny.py"), [
        "--config.train.steps=7", "--config.optim.lr=1", "--config.wandb.mode=disabled",
        "--config.data.train_paths=/tmp/a.txt", "--config.model.d_ff=512",
        "--config.train.sample_prompts=('a', 'b')", "--config.data.skip_bad=true"])
    assert config.train.steps == 7
    assert config.optim.lr == 1.0 and isinstance(config.optim.lr, float)
    assert config.data.train_paths == ("/tmp/a.txt",)
    assert config.model.d_ff == 512
    assert config.train.sample_prompts == ("a", "b")
    assert config.data.skip_bad is True


def test_vocab_size_is_linked():
    config = get_experiment_config(str(ROOT / "experiments/pretrain_tiny.py"),
                                   ["--config.data.vocab_size=2048"])
    assert config.model.vocab_size == 2048


def test_unknown_key_names_nearest():
    with pytest.raises(ConfigError, match="did you mean 'train.steps'"):
        get_experiment_config(str(ROOT / "experiments/pretrain_tiny.py"), ["--config.train.step=5"])


def test_wrong_type_is_named():
    with pytest.raises(ConfigError, match="train.steps.*expects int"):
        get_experiment_config(str(ROOT / "experiments/pretrain_tiny.py"),
                              ["--config.train.steps=many"])


def test_unknown_argument_and_missing_file():
    with pytest.raises(ConfigError, match="unknown pretrain_tiny flavour 'lama'.*'llama'"):
        get_experiment_config(str(ROOT / "experiments/pretrain_tiny.py") + ":lama")
    with pytest.raises(ConfigError, match="not found.*pretrain_tiny.py"):
        get_experiment_config(str(ROOT / "experiments/pretrain_tinny.py"))


def test_flavour_argument_switches_flavour():
    config = get_experiment_config(str(ROOT / "experiments/pretrain_tiny.py"))
    assert config.model.norm == "rmsnorm" and config.model.pos == "rope"  # Llama by default
    config = get_experiment_config(str(ROOT / "experiments/pretrain_tiny.py") + ":gpt2")
    assert config.model.norm == "layernorm" and config.model.pos == "learned"


def test_saved_config_is_json(tmp_path):
    config = get_experiment_config(str(ROOT / "experiments/pretrain_tiny.py"))
    save_config(config, tmp_path / "config.json")
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["model"]["d_model"] == config.model.d_model


def test_group_key_cannot_be_set():
    config = get_experiment_config(str(ROOT / "experiments/pretrain_tiny.py"))
    with pytest.raises(ConfigError, match="is a group"):
        apply_overrides(config, ["train=3"])


@pytest.mark.parametrize("argv,code,needle", [
    (["train", "experiments/pretrain_tiny.py", "--config.train.stepz=1"], 2, "train.steps"),
    (["train", "experiments/nope.py"], 2, "not found"),
    (["train", "experiments/pretrain_tiny.py:xl"], 2, "unknown pretrain_tiny flavour"),
    (["train", "experiments/pretrain_tiny.py", "--config.optim.lr=fast"], 2, "expects float"),
])
def test_cli_config_errors_are_one_line(argv, code, needle, capsys, monkeypatch):
    from llm_jax.cli import main

    monkeypatch.chdir(ROOT)
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert needle in err and "Traceback" not in err and len(err.splitlines()) == 1
