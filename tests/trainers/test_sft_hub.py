"""`experiments/sft_smollm.py` for 2 steps on a random tiny Llama Hub folder made here: the
model's own tokenizer and ChatML template (from tokenizer_config.json) drive the loss mask."""

import json
from pathlib import Path

import pytest

from llm_jax.cli import main
from tests.helpers import CHATML_SPECIAL, CHATML_TEMPLATE, byte_level_bpe, require

torch = require("torch")
transformers = require("transformers")

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def llama_folder(tmp_path_factory, austen_text):
    folder = tmp_path_factory.mktemp("hub_llama")
    tok = byte_level_bpe(austen_text.splitlines()[:4000], vocab_size=500, special=CHATML_SPECIAL)
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "chat_template": CHATML_TEMPLATE, "eos_token": "<|im_end|>", "bos_token": None}))
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=64, intermediate_size=128,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=256, eos_token_id=tok.token_to_id("<|im_end|>"),
        bos_token_id=tok.token_to_id("<|endoftext|>"), tie_word_embeddings=False)
    transformers.LlamaForCausalLM(config).save_pretrained(folder, safe_serialization=True)
    return folder


def test_sft_recipe_runs_two_steps_on_a_hub_folder(llama_folder, tmp_path):
    run_dir = tmp_path / "sft_hub"
    argv = ["train", str(ROOT / "experiments/sft_smollm.py"), "--workdir", str(run_dir),
            f"--config.init.from_hf={llama_folder}", "--config.data.seq_len=128",
            "--config.data.batch_size=8", "--config.model.dtype=float32",
            "--config.train.steps=2", "--config.train.eval_batches=1",
            "--config.train.log_every=1", "--config.wandb.mode=offline",
            "--config.sft.mixture_size=40", "--config.sft.eval_size=2",
            "--config.sft.eval_math=2", "--config.evals.chat.max_new_tokens=8",
            "--config.sft.weights.passages=0.0", "--config.sft.weights.gsm_symbolic=0.0"]
    assert main(argv) == 0
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2]
    assert any("chat/end_rate" in r and "eval_loss" in r for r in rows)
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["parent"]["kind"] == "hf" and saved["model"]["n_kv_heads"] == 2
    assert (run_dir / "hf_tokenizer" / "tokenizer_config.json").is_file()
