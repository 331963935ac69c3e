"""Parity with Hugging Face transformers (fp32, 1e-4): import their models, export ours."""

import json

import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from llm_jax.models.hf_io import (  # noqa: E402
    HFFormatError,
    load_hf_checkpoint,
    save_hf_checkpoint,
)
from llm_jax.models.transformer import Transformer  # noqa: E402
from tests.helpers import init_params, tiny_config  # noqa: E402

TOL = 1e-4


def _randomize(model, seed=0):
    """Non-trivial values everywhere, norms included, so no mapping mistake can hide."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            base = 1.0 if ("ln" in name or "norm" in name) and name.endswith("weight") else 0.0
            p.copy_(base + 0.2 * torch.randn(p.shape, generator=gen))
    return model.eval()


def _tokens(vocab, seed=0):
    return np.random.default_rng(seed).integers(0, vocab, (2, 12))


def _torch_logits(model, tokens):
    with torch.no_grad():
        return model(torch.tensor(tokens)).logits.float().numpy()


def _our_logits(cfg, params, tokens):
    return np.asarray(Transformer(cfg).apply({"params": params}, jnp.asarray(tokens)))


def _gpt2():
    cfg = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=101, n_positions=64,
                                  resid_pdrop=0, embd_pdrop=0, attn_pdrop=0)
    return _randomize(transformers.GPT2LMHeadModel(cfg))


def _llama(tied=False):
    cfg = transformers.LlamaConfig(hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, vocab_size=101,
                                   rope_theta=10000.0, max_position_embeddings=64,
                                   tie_word_embeddings=tied, rms_norm_eps=1e-5)
    return _randomize(transformers.LlamaForCausalLM(cfg))


@pytest.mark.parametrize("make", [_gpt2, _llama, lambda: _llama(tied=True)],
                         ids=["gpt2", "llama", "llama_tied"])
def test_import_matches_transformers(make, tmp_path):
    model = make()
    model.save_pretrained(tmp_path, safe_serialization=True)
    cfg, params = load_hf_checkpoint(tmp_path)
    tokens = _tokens(cfg.vocab_size)
    np.testing.assert_allclose(_our_logits(cfg, params, tokens), _torch_logits(model, tokens),
                               atol=TOL, rtol=0)


def _perturbed(flavour):
    cfg = tiny_config(flavour, vocab_size=101, max_seq_len=64)
    _, params = init_params(cfg, seed=1)
    rng = np.random.default_rng(1)
    bump = lambda x: np.asarray(x) + 0.1 * rng.standard_normal(np.shape(x))  # noqa: E731
    for block in params.values():
        for norm in ("attn_norm", "mlp_norm"):
            if norm in block:
                block[norm] = {k: bump(v) for k, v in block[norm].items()}
    params["final_norm"] = {k: bump(v) for k, v in params["final_norm"].items()}
    return cfg, params


@pytest.mark.parametrize("flavour", ["gpt2", "llama"])
@pytest.mark.parametrize("shard", [None, 20_000])
def test_export_loads_in_transformers(flavour, shard, tmp_path):
    cfg, params = _perturbed(flavour)
    save_hf_checkpoint(cfg, params, tmp_path, max_shard_bytes=shard)
    if shard:
        assert (tmp_path / "model.safetensors.index.json").exists()
    model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32)
    tokens = _tokens(cfg.vocab_size, seed=2)
    ours = _our_logits(cfg, params, tokens)
    np.testing.assert_allclose(_torch_logits(model.eval(), tokens), ours, atol=TOL, rtol=0)
    cfg2, params2 = load_hf_checkpoint(tmp_path)  # and back again
    assert cfg2.kv_heads == cfg.kv_heads and cfg2.tie_embeddings == cfg.tie_embeddings
    np.testing.assert_allclose(_our_logits(cfg2, params2, tokens), ours, atol=1e-6)


def test_bf16_checkpoint_loads(tmp_path):
    model = _llama().to(torch.bfloat16)
    model.save_pretrained(tmp_path, safe_serialization=True)
    cfg, params = load_hf_checkpoint(tmp_path)
    want = model.model.layers[0].self_attn.q_proj.weight.detach().float().numpy()
    got = np.asarray(params["block_0"]["attn"]["query"]["kernel"]).reshape(64, 64).T
    np.testing.assert_array_equal(got, want)  # bf16 → fp32 is exact


def test_unsupported_and_pickle_only(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(HFFormatError, match="model_type 'bert' is not supported"):
        load_hf_checkpoint(tmp_path)
    cfg = _llama().config.to_dict() | {"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(HFFormatError, match="RoPE scaling 'yarn'"):
        load_hf_checkpoint(tmp_path)
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text(json.dumps(_gpt2().config.to_dict()))
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x04not really")
    with pytest.raises(HFFormatError, match="pickle files are never loaded"):
        load_hf_checkpoint(pickled)
    with pytest.raises(HFFormatError, match="no Hugging Face architecture"):
        save_hf_checkpoint(tiny_config("gpt2", norm="rmsnorm"), {}, tmp_path / "out")
