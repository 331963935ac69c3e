"""Every user mistake on the command line prints one line naming what is wrong, no traceback,
and exits 2 (config/arguments) or 1 (data, model files, run directories)."""

import gzip
import json
from pathlib import Path

import pytest

from llm_jax.cli import main
from tests.helpers import TINY_RUN_ARGS, corpus_args

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = str(ROOT / "experiments/pretrain_tiny.py")


def _train(tmp_path, corpus, *extra):
    return ["train", EXPERIMENT, "--workdir", str(tmp_path / "run"), *TINY_RUN_ARGS,
            *corpus_args(corpus), "--config.train.steps=1", *extra]


def _files(tmp_path: Path, austen_text: str) -> dict[str, Path]:
    truncated = tmp_path / "truncated.jsonl.gz"
    blob = gzip.compress("".join(json.dumps({"text": austen_text[i:i + 500]}) + "\n"
                                 for i in range(0, 50_000, 500)).encode())
    truncated.write_bytes(blob[: len(blob) // 2])
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("A short corpus.\n\nToo small for the vocabulary.\n")
    hub = tmp_path / "hub"
    hub.mkdir()
    (hub / "config.json").write_text('{"model_type": "llama",\n "hidden_size": }')
    not_run = tmp_path / "not_a_run"
    not_run.mkdir()
    no_stage = tmp_path / "no_stage.py"
    no_stage.write_text("import ml_collections\n\ndef get_config(arg=None):\n"
                        "    return ml_collections.ConfigDict({'run': {'name': ''}})\n")
    return {"truncated": truncated, "tiny": tiny, "hub": hub, "not_run": not_run,
            "no_stage": no_stage}


CASES = [
    # (argv builder, exit code, text the line must contain)
    (lambda t, c, f: _train(t, c, "--config.optim.lrr=1"), 2, "did you mean 'optim.lr'"),
    (lambda t, c, f: _train(t, c, "--config.train.steps=many"), 2, "train.steps"),
    (lambda t, c, f: ["train", str(ROOT / "experiments/pretrain_tny.py")], 2,
     "did you mean"),
    (lambda t, c, f: ["train", EXPERIMENT + ":gpt3"], 2, "pretrain_tiny flavour"),
    (lambda t, c, f: _train(t, c, "--config.mesh.data=3"), 2, "mesh"),
    (lambda t, c, f: ["train", str(f["no_stage"])], 2, "config.stage is not set"),
    (lambda t, c, f: _train(t, c, "--config.stage=pretrian"), 2, "config.stage='pretrian'"),
    (lambda t, c, f: _train(t, c, "--config.data.train_paths=/nonexistent/*.txt"), 1,
     "/nonexistent"),
    (lambda t, c, f: _train(t, c, f"--config.data.train_paths={f['truncated']}"), 1,
     "truncated.jsonl.gz"),
    (lambda t, c, f: _train(t, c, f"--config.data.train_paths={f['tiny']}",
                            f"--config.data.val_paths={f['tiny']}",
                            "--config.data.vocab_size=4096"), 1, "data.vocab_size"),
    (lambda t, c, f: _train(t, c, f"--config.init.from_run={f['not_run']}"), 1,
     "init.from_run"),
    (lambda t, c, f: ["sample", "--hf", str(f["hub"]), "--prompt", "x"], 1, "config.json:2"),
    (lambda t, c, f: ["sample", str(f["not_run"]), "--prompt", "x"], 1,
     "not a run directory"),
    (lambda t, c, f: ["sample", "--prompt", "x"], 2, "RUN_DIR"),
    (lambda t, c, f: ["compare", str(t / "nonexistent")], 1, "nonexistent: not a run directory"),
    (lambda t, c, f: ["train", EXPERIMENT, "--bogus"], 2, "unrecognized arguments: --bogus"),
    (lambda t, c, f: ["train", str(ROOT / "experiments/grpo_math_tiny.py"), "--workdir",
                      str(t / "rl"), "--config.rl.minibatches=3"], 2, "rl.minibatches=3"),
    (lambda t, c, f: ["train", str(ROOT / "experiments/grpo_math_tiny.py"), "--workdir",
                      str(t / "rl"), "--config.optim.grad_accum=2"], 2, "optim.grad_accum=2"),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_user_error_is_one_line(case, corpus, austen_text, tmp_path, capfd):
    build, code, expected = CASES[case]
    argv = build(tmp_path, corpus, _files(tmp_path, austen_text))
    try:
        got = main(argv)
    except SystemExit as e:  # argparse exits itself
        got = e.code
    err = capfd.readouterr().err
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("llm-jax")]
    assert len(errors) == 1, err
    assert got == code, err
    assert expected in errors[0], errors[0]
