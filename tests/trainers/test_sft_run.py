"""SFT end to end: 2 steps from a 4-step pretraining run on the built-in mixture, with every
evaluation; and from conversation files."""

import json
from pathlib import Path

from llm_jax.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT = str(ROOT / "experiments/sft_tiny.py")
TINY = ["--config.data.seq_len=64", "--config.data.batch_size=8", "--config.train.steps=2",
        "--config.train.eval_every=0", "--config.train.eval_batches=1",
        "--config.train.log_every=1", "--config.wandb.mode=offline",
        "--config.sft.mixture_size=40", "--config.sft.eval_size=3", "--config.sft.eval_math=3",
        "--config.sft.eval_max_new_tokens=8", "--config.sft.system=false"]


def _rows(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_sft_two_steps_from_a_pretraining_run(tiny_pretrained_run, shared_data, tmp_path):
    run_dir = tmp_path / "sft"
    argv = ["train", EXPERIMENT, "--workdir", str(run_dir), *TINY,
            f"--config.init.from_run={tiny_pretrained_run}",
            f"--config.sft.books={shared_data / 'austen' / 'persuasion.txt'}"]
    assert main(argv) == 0
    rows = _rows(run_dir)
    assert [r["step"] for r in rows if "loss" in r] == [1, 2]
    final = [r for r in rows if "eval_loss" in r][-1]
    for key in ("eval_loss", "chat/end_rate", "chat/identity_acc", "math/accuracy"):
        assert key in final, final
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["stage"] == "sft" and saved["parent"]["kind"] == "run"


def test_sft_from_conversation_files(tiny_pretrained_run, tmp_path):
    chats = tmp_path / "chats.jsonl"
    with chats.open("w") as f:
        for i in range(12):
            f.write(json.dumps({"messages": [
                {"role": "user", "content": f"What is {i} plus {i}?"},
                {"role": "assistant", "content": f"{i} plus {i} is {2 * i}. #### {2 * i}"}]})
                + "\n")
    run_dir = tmp_path / "sft_files"
    argv = ["train", EXPERIMENT, "--workdir", str(run_dir), *TINY,
            f"--config.init.from_run={tiny_pretrained_run}",
            f"--config.data.train_paths={chats}"]
    assert main(argv) == 0
    assert [r["step"] for r in _rows(run_dir) if "loss" in r] == [1, 2]
