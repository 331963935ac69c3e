"""Sampling from a Hub-style folder: its own `tokenizer.json`, special ids from its configs, and
greedy text equal to transformers' `generate` on the same weights."""

import json

import jax
import pytest

from llm_jax.checkpoints.sources import load_model
from llm_jax.cli import main
from llm_jax.data.errors import DataError
from llm_jax.data.hf_tokenizer import HFTokenizer
from llm_jax.generate.sampler import Sampler, SamplingConfig
from tests.helpers import byte_level_bpe, require

torch = require("torch")
transformers = require("transformers")
tokenizers = require("tokenizers")

EOS = "<|endoftext|>"
PROMPTS = ["It is a truth universally acknowledged", "In the beginning"]


@pytest.fixture(scope="module")
def gpt2_folder(tmp_path_factory, austen_text):
    """A random tiny GPT-2 saved the way the Hub stores one (safetensors + tokenizer.json)."""
    folder = tmp_path_factory.mktemp("hub_gpt2")
    tok = byte_level_bpe(austen_text.splitlines()[:4000], vocab_size=400, special=(EOS,))
    tok.save(str(folder / "tokenizer.json"))
    eos = tok.token_to_id(EOS)
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=tok.get_vocab_size(), n_positions=128, n_embd=64, n_layer=2, n_head=4,
        initializer_range=0.2, bos_token_id=eos, eos_token_id=eos)
    transformers.GPT2LMHeadModel(config).eval().save_pretrained(folder,
                                                                safe_serialization=True)
    return folder


def test_tokenizer_round_trip_and_special_ids(gpt2_folder):
    tok = HFTokenizer(gpt2_folder)
    text = "Emma Woodhouse, handsome, clever, and rich -- 1816!"
    assert tok.decode(tok.encode(text)) == text
    assert tok.bos_id == tok.eos_id == tok.pad_id == 0  # GPT-2: <|endoftext|> for all three
    assert tok.stop_ids == (0,)
    assert 0 not in tok.encode(text)  # no BOS/EOS added by encode


def test_greedy_equals_transformers_generate(gpt2_folder):
    model, params, tok, _ = load_model(hf=gpt2_folder)
    prompts = [[tok.bos_id, *tok.encode(p)] for p in PROMPTS]
    new = 12
    rollout = Sampler(model).generate(
        params, prompts, jax.random.PRNGKey(0),
        SamplingConfig(max_new_tokens=new, temperature=0.0, stop_tokens=tok.stop_ids,
                       pad_id=tok.pad_id))
    hf_model = transformers.GPT2LMHeadModel.from_pretrained(gpt2_folder).eval()
    for row, prompt in enumerate(prompts):
        with torch.no_grad():
            ids = torch.tensor([prompt])
            out = hf_model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                    max_new_tokens=new, pad_token_id=tok.pad_id)
        expected = out[0, len(prompt):].tolist()
        ours = rollout.tokens[row, :rollout.lengths[row]].tolist()
        assert ours == expected, (row, ours, expected)


def test_sample_cli_uses_the_folder_tokenizer(gpt2_folder, capsys):
    assert main(["sample", "--hf", str(gpt2_folder), "--prompt", PROMPTS[0],
                 "--max-new-tokens", "8", "--temperature", "0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("--- sample 0") and PROMPTS[0] in out


def test_several_stop_ids_from_generation_config(gpt2_folder, tmp_path):
    folder = tmp_path / "chat"
    folder.mkdir()
    for name in ("tokenizer.json", "config.json"):
        (folder / name).write_bytes((gpt2_folder / name).read_bytes())
    (folder / "generation_config.json").write_text(json.dumps({"eos_token_id": [0, 5],
                                                               "pad_token_id": 7}))
    tok = HFTokenizer(folder)
    assert tok.stop_ids == (0, 5) and tok.eos_id == 0 and tok.pad_id == 7 and tok.bos_id == 0


def test_bad_folders_are_named(gpt2_folder, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "tokenizer.json").write_text("{not json")
    (folder / "config.json").write_text(json.dumps({"eos_token_id": 0}))
    with pytest.raises(DataError, match="tokenizer.json: not a readable tokenizer file"):
        HFTokenizer(folder)
    (folder / "tokenizer.json").write_bytes((gpt2_folder / "tokenizer.json").read_bytes())
    (folder / "config.json").write_text(json.dumps({"vocab_size": 400}))
    with pytest.raises(DataError, match="no eos_token_id"):
        HFTokenizer(folder)
    (folder / "config.json").write_text('{"eos_token_id": 0,\n "x": }')
    with pytest.raises(DataError, match=r"config.json:2: not valid JSON"):
        HFTokenizer(folder)
    # A model folder with weights but no tokenizer at all.
    weights_only = tmp_path / "weights_only"
    weights_only.mkdir()
    for name in ("config.json", "model.safetensors"):
        (weights_only / name).write_bytes((gpt2_folder / name).read_bytes())
    with pytest.raises(DataError, match="no tokenizer"):
        load_model(hf=weights_only)


def test_token_byte_lengths_add_up_to_the_text(gpt2_folder, austen_text):
    tok = HFTokenizer(gpt2_folder)
    lengths = tok.token_byte_lengths()
    text = austen_text[5000:7000] + " naïve café — 1,234"
    assert lengths[tok.encode(text)].sum() == len(text.encode())
    assert lengths[tok.eos_id] == 0


def test_a_run_starts_from_a_hub_folder(gpt2_folder, corpus, tmp_path):
    from pathlib import Path

    from tests.helpers import TINY_RUN_ARGS, corpus_args

    experiment = Path(__file__).resolve().parents[2] / "experiments/pretrain_tiny.py"
    run_dir = tmp_path / "from_hub"
    argv = ["train", str(experiment), "--workdir", str(run_dir), *TINY_RUN_ARGS,
            *corpus_args(corpus), "--config.train.steps=2", "--config.train.sample_every=0",
            f"--config.init.from_hf={gpt2_folder}"]
    assert main(argv) == 0
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["parent"]["kind"] == "hf" and saved["model"]["d_model"] == 64
    assert (run_dir / "hf_tokenizer" / "tokenizer.json").is_file()
    # The run stands alone: sampling from it uses the copied Hub tokenizer.
    assert main(["sample", str(run_dir), "--prompt", "It is", "--max-new-tokens", "4",
                 "--temperature", "0"]) == 0
