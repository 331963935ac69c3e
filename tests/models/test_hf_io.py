"""Parity with Hugging Face transformers (fp32, 1e-4 on logits): import their GPT-2 and Llama
checkpoints, export ours so `AutoModelForCausalLM` loads them, and refuse what we cannot read."""

import json
import pickle

import jax
import ml_dtypes
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from llm_jax.models.hf_io import (
    HFFormatError,
    config_from_hf,
    hf_state_from_params,
    load_hf_checkpoint,
    params_from_hf_state,
    save_hf_checkpoint,
)
from llm_jax.models.safetensors_files import map_file
from tests.helpers import require, tiny_config
from tests.models.hf_parity import (
    TOL,
    VOCAB,
    explicit,
    our_logits,
    random_ours,
    random_tokens,
    randomize,
    torch_logits,
)

torch = require("torch")
transformers = require("transformers")


def _gpt2(tied=True):
    cfg = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=VOCAB,
                                  n_positions=64, resid_pdrop=0, embd_pdrop=0, attn_pdrop=0,
                                  layer_norm_epsilon=1e-5, tie_word_embeddings=tied,
                                  bos_token_id=None, eos_token_id=None)
    return randomize(transformers.GPT2LMHeadModel(cfg))


def _llama(tied=False, bias=False):
    cfg = transformers.LlamaConfig(hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2,
                                   vocab_size=VOCAB, rope_theta=10000.0,
                                   max_position_embeddings=64, tie_word_embeddings=tied,
                                   rms_norm_eps=1e-5, attention_bias=bias, mlp_bias=bias,
                                   bos_token_id=None, eos_token_id=None)
    return randomize(transformers.LlamaForCausalLM(cfg))


IMPORTS = {"gpt2": _gpt2, "gpt2_untied": lambda: _gpt2(tied=False), "llama": _llama,
           "llama_tied": lambda: _llama(tied=True), "llama_bias": lambda: _llama(bias=True)}


@pytest.mark.parametrize("name", list(IMPORTS))
def test_import_matches_transformers(name, tmp_path):
    model = IMPORTS[name]()
    model.save_pretrained(tmp_path, safe_serialization=True)
    cfg, params = load_hf_checkpoint(tmp_path)
    hf = model.config
    assert cfg.tie_embeddings == hf.tie_word_embeddings
    if name.startswith("llama"):
        assert (cfg.kv_heads, cfg.ff_size, cfg.rope_theta, cfg.norm_eps) == (2, 96, 1e4, 1e-5)
        assert cfg.use_bias == hf.attention_bias
    tokens = random_tokens()
    np.testing.assert_allclose(our_logits(cfg, params, tokens), torch_logits(model, tokens),
                               atol=TOL, rtol=0)


EXPORTS = {"gpt2": ("gpt2", {}), "gpt2_untied": ("gpt2", {"tie_embeddings": False}),
           "llama": ("llama", {}), "llama_tied": ("llama", {"tie_embeddings": True}),
           "llama_bias": ("llama", {"use_bias": True})}


@pytest.mark.parametrize("name, shard", [
    *((name, None) for name in EXPORTS),
    ("gpt2", 20_000), ("llama", 20_000),  # sharding is layout-independent: two cases suffice
])
def test_export_loads_in_transformers(name, shard, tmp_path):
    flavour, overrides = EXPORTS[name]
    cfg, params = random_ours(flavour, **overrides)
    save_hf_checkpoint(cfg, params, tmp_path, max_shard_bytes=shard)
    if shard:
        index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
        shards = sorted(p.name for p in tmp_path.glob("model-*-of-*.safetensors"))
        assert len(shards) > 2 and sorted(set(index["weight_map"].values())) == shards
        assert not (tmp_path / "model.safetensors").exists()
    model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32)
    assert type(model).__name__ == ("GPT2LMHeadModel" if flavour == "gpt2"
                                    else "LlamaForCausalLM")
    tokens = random_tokens(seed=2)
    ours = our_logits(cfg, params, tokens)
    np.testing.assert_allclose(torch_logits(model.eval(), tokens), ours, atol=TOL, rtol=0)

    cfg2, params2 = load_hf_checkpoint(tmp_path)  # and back again, bit for bit
    assert explicit(cfg2) == explicit(cfg)
    jax.tree.map(np.testing.assert_array_equal, params2, jax.tree.map(np.asarray, params))


def test_export_replaces_an_earlier_export(tmp_path):
    """A sharded export over a single-file one (or back) must not leave the old weights where
    transformers would read them first."""
    cfg, params = random_ours("llama")
    save_hf_checkpoint(*random_ours("gpt2"), tmp_path)
    save_hf_checkpoint(cfg, params, tmp_path, max_shard_bytes=20_000)
    assert not (tmp_path / "model.safetensors").exists()
    save_hf_checkpoint(cfg, params, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    _, back = load_hf_checkpoint(tmp_path)
    jax.tree.map(np.testing.assert_array_equal, back, jax.tree.map(np.asarray, params))


@pytest.fixture(scope="module")
def bf16_llama(tmp_path_factory):
    path = tmp_path_factory.mktemp("bf16")
    model = _llama().to(torch.bfloat16)
    model.save_pretrained(path, safe_serialization=True)
    return model, path


def _assert_same_as_torch(cfg, params, model):
    want = {k: v.float().numpy() for k, v in model.state_dict().items()}
    got = hf_state_from_params(cfg, params)
    assert set(got) == set(want)
    for key, value in got.items():
        np.testing.assert_array_equal(value, want[key], err_msg=key)  # bf16 → fp32 is exact


def test_bf16_checkpoint_loads(bf16_llama):
    model, path = bf16_llama
    assert next(iter(load_file(path / "model.safetensors").values())).dtype == ml_dtypes.bfloat16
    cfg, params = load_hf_checkpoint(path)
    _assert_same_as_torch(cfg, params, model)
    # Same weights in fp32 on both sides, so the forward passes agree to the fp32 tolerance.
    # (A fresh fp32 model, not `model.float()`: casting to bf16 also rounded torch's RoPE
    # frequency buffer, which no checkpoint stores.)
    fp32 = _llama()
    fp32.load_state_dict({k: v.float() for k, v in model.state_dict().items()})
    tokens = random_tokens(seed=3)
    np.testing.assert_allclose(our_logits(cfg, params, tokens), torch_logits(fp32, tokens),
                               atol=TOL, rtol=0)


def test_memory_mapped_reader_equals_safetensors(tmp_path):
    """Our header parser gives the same arrays as the safetensors package, for every dtype a
    checkpoint may hold (bf16 included), and empty tensors."""
    rng = np.random.default_rng(0)
    tensors = {"bf16": rng.standard_normal((3, 5)).astype(ml_dtypes.bfloat16),
               "f16": rng.standard_normal(7).astype(np.float16),
               "f32": rng.standard_normal((2, 3, 4)).astype(np.float32),
               "f64": rng.standard_normal(1).astype(np.float64),
               "i64": np.arange(6, dtype=np.int64).reshape(2, 3),
               "u8": np.arange(3, dtype=np.uint8), "empty": np.zeros((0, 4), np.float32)}
    save_file(tensors, str(tmp_path / "t.safetensors"))
    got, want = map_file(tmp_path / "t.safetensors"), load_file(tmp_path / "t.safetensors")
    assert set(got) == set(want) == set(tensors)
    for name, value in want.items():
        assert got[name].dtype == value.dtype and got[name].shape == value.shape, name
        np.testing.assert_array_equal(got[name], value, err_msg=name)


@pytest.mark.parametrize("flavour", ["gpt2", "llama"])
def test_base_model_names_and_buffers(flavour):
    """Checkpoints of the bare base model (the original "gpt2" repo) lack the "transformer." /
    "model." prefix, and carry non-weight buffers that are skipped."""
    cfg, params = random_ours(flavour)
    state = hf_state_from_params(cfg, params)
    bare = {k.split(".", 1)[1] if k != "lm_head.weight" else k: v for k, v in state.items()}
    for i in range(cfg.n_layers):
        if flavour == "gpt2":
            bare[f"h.{i}.attn.bias"] = np.tril(np.ones((1, 1, 64, 64), np.float32))
            bare[f"h.{i}.attn.masked_bias"] = np.array(-1e4, np.float32)
        else:
            bare[f"layers.{i}.self_attn.rotary_emb.inv_freq"] = np.ones(8, np.float32)
    back = params_from_hf_state(cfg, bare)
    jax.tree.map(np.testing.assert_array_equal, back, jax.tree.map(np.asarray, params))


def test_checkpoint_that_does_not_fit_the_config():
    cfg, params = random_ours("llama")
    state = hf_state_from_params(cfg, params)
    with pytest.raises(HFFormatError, match="not used by this config.*q_proj.bias"):
        params_from_hf_state(cfg, state | {"model.layers.0.self_attn.q_proj.bias":
                                           np.zeros(64, np.float32)})
    with pytest.raises(HFFormatError, match=r"has shape \(101, 64\); this config expects "
                                            r"\(128, 64\)"):
        params_from_hf_state(tiny_config("llama", vocab_size=128, max_seq_len=64), state)
    with pytest.raises(HFFormatError, match="no tensor 'model.layers.1.mlp.up_proj.weight'"):
        params_from_hf_state(cfg, {k: v for k, v in state.items() if "1.mlp.up" not in k})
    with pytest.raises(HFFormatError, match="only float checkpoints"):
        params_from_hf_state(cfg, state | {"model.norm.weight": np.zeros(64, np.int8)})


LLAMA_HF = {"model_type": "llama", "vocab_size": VOCAB, "hidden_size": 64,
            "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 96}
GPT2_HF = {"model_type": "gpt2", "vocab_size": VOCAB, "n_embd": 64, "n_layer": 2, "n_head": 4,
           "n_positions": 64}


@pytest.mark.parametrize("hf, match", [
    ({"model_type": "bert"}, "model_type 'bert' is not supported"),
    (LLAMA_HF | {"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}, "RoPE scaling 'yarn'"),
    (LLAMA_HF | {"rope_parameters": {"rope_type": "llama3", "rope_theta": 5e5}},
     "llama3 RoPE scaling without factor, low_freq_factor, high_freq_factor"),
    (LLAMA_HF | {"rope_scaling": {"type": "linear", "factor": 2.0}}, "RoPE scaling 'linear'"),
    (LLAMA_HF | {"partial_rotary_factor": 0.5}, "partial_rotary_factor=0.5"),
    (LLAMA_HF | {"model_type": "qwen2", "use_sliding_window": True}, "qwen2: sliding-window"),
    (LLAMA_HF | {"model_type": "qwen3", "layer_types": ["sliding_attention"] * 2},
     "qwen3: sliding-window"),
    (LLAMA_HF | {"model_type": "qwen3", "attention_bias": True},
     "qwen3 attention_bias=true"),
    ({"model_type": "gemma"}, "model_type 'gemma' is not supported"),
    (LLAMA_HF | {"attention_bias": True}, "attention_bias=True with mlp_bias=False"),
    (LLAMA_HF | {"hidden_act": "gelu"}, "activation 'gelu'"),
    (LLAMA_HF | {"model_type": "mistral", "sliding_window": 4096}, "mistral: sliding-window"),
    (GPT2_HF | {"scale_attn_by_inverse_layer_idx": True}, "scale_attn_by_inverse_layer_idx"),
    (GPT2_HF | {"scale_attn_weights": False}, "scale_attn_weights=false"),
    (GPT2_HF | {"activation_function": "relu"}, "activation 'relu'"),
])
def test_unsupported_configs(hf, match):
    with pytest.raises(HFFormatError, match=match):
        config_from_hf(hf)


def test_supported_config_variants():
    mistral = config_from_hf(LLAMA_HF | {"model_type": "mistral", "sliding_window": None,
                                         "num_key_value_heads": 2, "rope_theta": 1e6})
    assert (mistral.kv_heads, mistral.head_size, mistral.rope_theta) == (2, 16, 1e6)
    assert config_from_hf(GPT2_HF).ff_size == 256  # n_inner absent → 4 * n_embd


def test_unsupported_config_through_the_loader(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(HFFormatError, match="model_type 'bert' is not supported"):
        load_hf_checkpoint(tmp_path)


class _Tripwire:
    """Unpickling this creates a file: proof that a loader opened the pickle."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def test_pickle_only_checkpoint_is_refused_unopened(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(GPT2_HF))
    sentinel = tmp_path / "unpickled"
    (tmp_path / "pytorch_model.bin").write_bytes(pickle.dumps(_Tripwire(sentinel)))
    with pytest.raises(HFFormatError, match="pytorch_model.bin: pickle files are never loaded, "
                                            "only safetensors are read"):
        load_hf_checkpoint(tmp_path)
    assert not sentinel.exists()


def test_missing_folder_is_not_sent_to_the_hub(tmp_path):
    for path in (tmp_path / "nope", "./nope", "a/b/c"):
        with pytest.raises(HFFormatError, match="not a checkpoint folder"):
            load_hf_checkpoint(path)


def test_export_refuses_what_hf_cannot_express(tmp_path):
    with pytest.raises(HFFormatError, match="no Hugging Face architecture matches norm=rmsnorm, "
                                            "pos=learned"):
        cfg, params = random_ours("gpt2", norm="rmsnorm")
        save_hf_checkpoint(cfg, params, tmp_path / "a")
    with pytest.raises(HFFormatError, match="GPT-2 layout needs n_kv_heads == n_heads"):
        cfg, params = random_ours("gpt2", n_kv_heads=2)
        save_hf_checkpoint(cfg, params, tmp_path / "b")
    with pytest.raises(HFFormatError, match="qk_norm with biases has no Hugging Face"):
        cfg, params = random_ours("llama", qk_norm=True, qkv_bias=True)
        save_hf_checkpoint(cfg, params, tmp_path / "e")
    cfg, params = random_ours("llama")
    with pytest.raises(HFFormatError, match=r"\['lm_head'\]\['kernel'\]: missing"):
        save_hf_checkpoint(cfg, {k: v for k, v in params.items() if k != "lm_head"},
                           tmp_path / "c")
    with pytest.raises(HFFormatError, match=r"shape \(128, 64\), config needs \(101, 64\)"):
        save_hf_checkpoint(cfg, params | {"embed": {"embedding": np.zeros((128, 64))}},
                           tmp_path / "d")
    assert not (tmp_path / "c").exists()  # nothing written when the params are refused
