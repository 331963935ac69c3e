"""Llama 3.x (llama3 RoPE scaling), Qwen2/2.5, Qwen3 and SmolLM2 against transformers: fp32
logits within 1e-4 on import, greedy ids equal to `generate`, and our exports loading as the
right architecture."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from llm_jax.generate.sampler import Sampler, SamplingConfig
from llm_jax.models.hf_config import config_from_hf, config_to_hf
from llm_jax.models.hf_io import load_hf_checkpoint, save_hf_checkpoint
from llm_jax.models.transformer import Transformer
from llm_jax.nn.rope import RopeScaling, rope_frequencies
from tests.helpers import require
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

# Wavelengths of a 16-wide head at theta 5e5 run from 6 to ~1.2e6 positions, so with an
# original context of 64 all three llama3 bands (kept, blended, slowed) are populated.
LLAMA3_ROPE = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
               "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 64}
SMALL = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, vocab_size=VOCAB, max_position_embeddings=64,
             rms_norm_eps=1e-6, bos_token_id=None, eos_token_id=None, pad_token_id=None)


def _llama3():
    return transformers.LlamaForCausalLM(transformers.LlamaConfig(
        **SMALL, rope_parameters=dict(LLAMA3_ROPE), tie_word_embeddings=True))


def _qwen2(tied):
    return transformers.Qwen2ForCausalLM(transformers.Qwen2Config(
        **SMALL, rope_parameters={"rope_type": "default", "rope_theta": 1e6},
        tie_word_embeddings=tied))


def _qwen3(tied):
    # head_dim 32 with 4 heads: attention is 128 wide on a 64-wide residual stream.
    return transformers.Qwen3ForCausalLM(transformers.Qwen3Config(
        **SMALL, head_dim=32, rope_parameters={"rope_type": "default", "rope_theta": 1e6},
        tie_word_embeddings=tied))


def _smollm2():
    # SmolLM2-135M's shape, shrunk: 9 heads of 8 over 3 kv heads, tied, theta 1e5.
    shape = SMALL | dict(hidden_size=72, intermediate_size=192, num_attention_heads=9,
                         num_key_value_heads=3, rms_norm_eps=1e-5)
    return transformers.LlamaForCausalLM(transformers.LlamaConfig(
        **shape, rope_parameters={"rope_type": "default", "rope_theta": 100000.0},
        tie_word_embeddings=True))


FAMILIES = {"llama3": _llama3, "qwen2_tied": lambda: _qwen2(True),
            "qwen2_untied": lambda: _qwen2(False), "qwen3_tied": lambda: _qwen3(True),
            "qwen3_untied": lambda: _qwen3(False), "smollm2": _smollm2}


@pytest.fixture(scope="module", params=list(FAMILIES))
def hf_folder(request, tmp_path_factory):
    model = randomize(FAMILIES[request.param]())
    folder = tmp_path_factory.mktemp(request.param)
    model.save_pretrained(folder, safe_serialization=True)
    return request.param, model, folder


def test_import_matches_transformers(hf_folder):
    name, model, folder = hf_folder
    cfg, params = load_hf_checkpoint(folder)
    assert cfg.tie_embeddings == model.config.tie_word_embeddings
    assert cfg.qkv_bias == name.startswith("qwen2")
    assert cfg.qk_norm == name.startswith("qwen3")
    assert cfg.head_size == (32 if name.startswith("qwen3") else 8 if name == "smollm2" else 16)
    if name == "llama3":
        assert cfg.rope_scaling == RopeScaling(8.0, 1.0, 4.0, 64)
    tokens = random_tokens(seed=4)
    np.testing.assert_allclose(our_logits(cfg, params, tokens), torch_logits(model, tokens),
                               atol=TOL, rtol=0)


def test_greedy_ids_equal_transformers_generate(hf_folder):
    _, model, folder = hf_folder
    cfg, params = load_hf_checkpoint(folder)
    prompts = random_tokens(seed=5, length=9).tolist()
    new = 12
    rollout = Sampler(Transformer(cfg)).generate(
        jax.tree.map(jnp.asarray, params), prompts, jax.random.PRNGKey(0),
        SamplingConfig(max_new_tokens=new, temperature=0.0, pad_id=0))
    with torch.no_grad():
        ids = torch.tensor(prompts)
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                             max_new_tokens=new, min_new_tokens=new, pad_token_id=0)
    for row in range(len(prompts)):
        assert rollout.tokens[row, :rollout.lengths[row]].tolist() == out[row, 9:].tolist()


EXPORTS = {"llama3": ("llama", {"rope_theta": 5e5, "rope_scaling": RopeScaling(8, 1, 4, 64)},
                      "LlamaForCausalLM"),
           "qwen2": ("llama", {"qkv_bias": True, "use_bias": False}, "Qwen2ForCausalLM"),
           "qwen2_tied": ("llama", {"qkv_bias": True, "tie_embeddings": True},
                          "Qwen2ForCausalLM"),
           "qwen3": ("llama", {"qk_norm": True, "head_dim": 32}, "Qwen3ForCausalLM"),
           "qwen3_tied": ("llama", {"qk_norm": True, "tie_embeddings": True},
                          "Qwen3ForCausalLM")}


@pytest.mark.parametrize("name", list(EXPORTS))
def test_export_loads_as_the_right_architecture(name, tmp_path):
    flavour, overrides, architecture = EXPORTS[name]
    cfg, params = random_ours(flavour, **overrides)
    save_hf_checkpoint(cfg, params, tmp_path)
    model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32)
    assert type(model).__name__ == architecture
    tokens = random_tokens(seed=6)
    np.testing.assert_allclose(torch_logits(model.eval(), tokens),
                               our_logits(cfg, params, tokens), atol=TOL, rtol=0)
    cfg2, params2 = load_hf_checkpoint(tmp_path)  # and back again, bit for bit
    assert explicit(cfg2) == explicit(cfg)
    jax.tree.map(np.testing.assert_array_equal, params2, jax.tree.map(np.asarray, params))


def _llama3_bands(scaled: np.ndarray, base: np.ndarray) -> list[str]:
    """Which llama3 band each frequency fell in: kept, divided by the factor, or blended."""
    return ["kept" if np.isclose(s, b, rtol=1e-6) else "divided" if
            np.isclose(s, b / 8.0, rtol=1e-6) else "blended" for s, b in zip(scaled, base)]


def test_llama3_frequencies_equal_transformers():
    """Our fp32 llama3 inverse frequencies fall in the same bands as the reference's, edges
    included, with the same values to fp32 rounding. (torch's vectorised pow rounds the base
    frequencies differently from one CPU to another, by up to a few ulp, so the values
    themselves cannot be compared bit for bit on every machine.)"""
    hf_cfg = transformers.LlamaConfig(**(SMALL | {"hidden_size": 256, "num_attention_heads": 2}),
                                      rope_parameters=dict(LLAMA3_ROPE))
    init = transformers.modeling_rope_utils.ROPE_INIT_FUNCTIONS
    want = init["llama3"](hf_cfg, "cpu")[0].numpy()
    want_base = 1.0 / (500000.0 ** (np.arange(0, 128, 2, dtype=np.float64) / 128))
    got = rope_frequencies(128, 500000.0, RopeScaling(8.0, 1.0, 4.0, 64))
    got_base = rope_frequencies(128, 500000.0)
    bands = _llama3_bands(want, want_base)
    assert {"kept", "divided", "blended"} <= set(bands)  # the config reaches every band
    assert _llama3_bands(got, got_base) == bands
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=0)


def test_transformers4_config_format_reads_the_same():
    """4.x configs keep rope_theta at the top and the scaling under `rope_scaling`."""
    new = {"model_type": "llama", **SMALL, "rope_parameters": dict(LLAMA3_ROPE)}
    old = {"model_type": "llama", **SMALL, "rope_theta": 500000.0,
           "rope_scaling": {k: v for k, v in LLAMA3_ROPE.items() if k != "rope_theta"}}
    assert config_from_hf(new) == config_from_hf(old)
    assert config_from_hf(config_to_hf(config_from_hf(old))) == config_from_hf(old)
