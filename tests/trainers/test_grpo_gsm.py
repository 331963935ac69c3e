"""`experiments/grpo_gsm.py` for 2 iterations on a random tiny Qwen2 Hub folder made here: the
model's own tokenizer and chat template, gsm_symbolic problems, k3 KL to the Hub model."""

import json
from pathlib import Path

import pytest

from llm_jax.cli import main
from llm_jax.tracking.metrics_log import metrics_by_step
from tests.helpers import CHATML_SPECIAL, CHATML_TEMPLATE, byte_level_bpe, require

torch = require("torch")
transformers = require("transformers")

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def qwen2_folder(tmp_path_factory, austen_text):
    folder = tmp_path_factory.mktemp("hub_qwen2")
    tok = byte_level_bpe(austen_text.splitlines()[:4000], vocab_size=600, special=CHATML_SPECIAL)
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "chat_template": CHATML_TEMPLATE, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
        "bos_token": None}))
    torch.manual_seed(0)
    config = transformers.Qwen2Config(
        vocab_size=tok.get_vocab_size(), hidden_size=64, intermediate_size=128,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=512, eos_token_id=tok.token_to_id("<|im_end|>"),
        tie_word_embeddings=True)
    transformers.Qwen2ForCausalLM(config).save_pretrained(folder, safe_serialization=True)
    return folder


@pytest.mark.slow
def test_grpo_gsm_recipe_runs_two_iterations_on_a_qwen2_folder(qwen2_folder, tmp_path):
    run_dir = tmp_path / "grpo_gsm"
    argv = ["train", str(ROOT / "experiments/grpo_gsm.py"), "--workdir", str(run_dir),
            f"--config.init.from_hf={qwen2_folder}", "--config.model.dtype=float32",
            "--config.rl.prompts_per_iteration=4", "--config.rl.group_size=2",
            "--config.rl.max_new_tokens=8", "--config.rl.task.size=60",
            "--config.rl.task.eval_problems=2", "--config.evals.problems.samples=2",
            "--config.evals.problems.ks=(1,2)", "--config.train.steps=2",
            "--config.train.eval_every=2", "--config.train.checkpoint_every=1",
            "--config.wandb.mode=offline"]
    assert main(argv) == 0
    rows = metrics_by_step(run_dir)
    assert {0, 1, 2} <= set(rows)
    assert "eval/accuracy" in rows[0] and "eval/pass@2" in rows[2]
    assert "kl" in rows[1] and "time/reference" in rows[1]
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["parent"]["kind"] == "hf" and saved["model"]["qkv_bias"]
