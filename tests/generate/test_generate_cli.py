"""`llm-jax sample`, `chat` and `export` on a freshly trained run."""

from pathlib import Path

import pytest

from llm_jax.cli import main
from tests.helpers import TINY_RUN_ARGS, corpus_args

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, corpus):
    out = tmp_path_factory.mktemp("run") / "tiny"
    assert main(["train", str(ROOT / "experiments/pretrain_tiny.py"), "--workdir", str(out),
                 "--config.train.steps=2", *TINY_RUN_ARGS, *corpus_args(corpus)]) == 0
    return out


def test_sample(run_dir, capsys):
    assert main(["sample", str(run_dir), "--prompt", "It is", "--prompt", "She", "-n", "2",
                 "--max-new-tokens", "5", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert out.count("--- sample") == 4 and "It is" in out and "She" in out


def test_chat_streams_and_quits(run_dir, capsys, monkeypatch):
    lines = iter(["Hello there", "and then", ""])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(lines))
    assert main(["chat", str(run_dir), "--max-new-tokens", "4", "--temperature", "0"]) == 0
    out = capsys.readouterr().out
    assert "type text" in out and len(out.splitlines()) >= 3


def test_export_then_sample_hf(run_dir, tmp_path, capsys):
    out_dir = tmp_path / "hf"
    assert main(["export", str(run_dir), str(out_dir)]) == 0
    assert (out_dir / "model.safetensors").exists() and (out_dir / "tokenizer.model").exists()
    capsys.readouterr()
    args = ["--prompt", "It is", "--max-new-tokens", "6", "--temperature", "0"]
    assert main(["sample", str(run_dir), *args]) == 0
    from_run = capsys.readouterr().out
    assert main(["sample", "--hf", str(out_dir), *args]) == 0
    assert capsys.readouterr().out == from_run  # same weights, same greedy text
