"""Named model sizes. Each returns the keyword arguments of a `ModelConfig` (minus vocab)."""

from __future__ import annotations

GPT2 = dict(norm="layernorm", pos="learned", mlp="gelu", use_bias=True, tie_embeddings=True,
            norm_eps=1e-5)
LLAMA = dict(norm="rmsnorm", pos="rope", mlp="swiglu", use_bias=False, tie_embeddings=False,
             norm_eps=1e-5, rope_theta=500000.0)

PRESETS: dict[str, dict] = {
    # ~1-5 M parameters: trains on a 2-core CPU in minutes.
    "tiny": dict(GPT2, d_model=256, n_layers=4, n_heads=4, max_seq_len=256),
    "tiny_llama": dict(LLAMA, d_model=256, n_layers=4, n_heads=4, n_kv_heads=2, d_ff=688,
                       max_seq_len=256, rope_theta=10000.0),
    # The GPT-2 family (Radford et al. 2019), vocab 50257 in the original.
    "gpt2_124m": dict(GPT2, d_model=768, n_layers=12, n_heads=12, max_seq_len=1024),
    "gpt2_350m": dict(GPT2, d_model=1024, n_layers=24, n_heads=16, max_seq_len=1024),
    # Llama-3.2-1B-shaped: 16 layers, GQA 32/8, SwiGLU 8192, tied embeddings.
    "llama_1b": dict(LLAMA, d_model=2048, n_layers=16, n_heads=32, n_kv_heads=8, d_ff=8192,
                     max_seq_len=2048, tie_embeddings=True),
}


def preset(name: str) -> dict:
    """A copy of a named preset; unknown names list the choices."""
    if name not in PRESETS:
        raise KeyError(f"unknown model preset {name!r}; choose from {sorted(PRESETS)}")
    return dict(PRESETS[name])
