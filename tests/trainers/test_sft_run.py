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
        "--config.evals.chat.max_new_tokens=8", "--config.sft.system=false"]


def _rows(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_sft_two_steps_from_a_pretraining_run(tiny_pretrained_run, test_corpus, tmp_path):
    run_dir = tmp_path / "sft"
    argv = ["train", EXPERIMENT, "--workdir", str(run_dir), *TINY,
            f"--config.init.from_run={tiny_pretrained_run}",
            f"--config.sft.books={test_corpus / 'persuasion.txt'}"]
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


def test_chat_speaks_through_the_template(tiny_pretrained_run, tmp_path, capsys, monkeypatch):
    import jax

    from llm_jax.checkpoints.sources import load_model
    from llm_jax.data.chat import OurTemplate
    from llm_jax.generate.sampler import Sampler, SamplingConfig
    from llm_jax.generate.tools import ToolTokens, generate_with_tools

    run_dir = tmp_path / "sft_chat"
    assert main(["train", EXPERIMENT, "--workdir", str(run_dir), *TINY,
                 "--config.sft.weights.passages=0.0",
                 f"--config.init.from_run={tiny_pretrained_run}"]) == 0
    lines = iter(["Who are you?", ""])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(lines))
    capsys.readouterr()
    assert main(["chat", str(run_dir), "--max-new-tokens", "6", "--temperature", "0"]) == 0
    printed = capsys.readouterr().out.splitlines()[1]
    # The same reply, generated directly from the template's prompt.
    model, params, tok, _ = load_model(run_dir)
    template = OurTemplate()
    prompt = template.render_for_generation([{"role": "user", "content": "Who are you?"}], tok)
    stops = template.stop_ids(tok)
    out = generate_with_tools(Sampler(model), params, [prompt], jax.random.PRNGKey(0),
                              SamplingConfig(max_new_tokens=6, temperature=0.0,
                                             stop_tokens=stops, pad_id=tok.pad_id),
                              tok, ToolTokens.from_tokenizer(tok))
    expected = tok.decode([int(t) for t in out.tokens[0, :out.lengths[0]]
                           if int(t) not in stops])
    assert printed == expected
