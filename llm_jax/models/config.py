"""`ModelConfig`: the frozen, hashable description of one transformer, shared by every stage.

GPT-2, Llama, Qwen2 and Qwen3 are settings of it (see `presets.py` and `hf_config.py`)."""

from __future__ import annotations

import dataclasses
from typing import Literal

import jax.numpy as jnp

from llm_jax.nn.rope import RopeScaling


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    d_model: int
    n_layers: int
    n_heads: int
    n_kv_heads: int | None = None  # None = n_heads (multi-head); fewer = grouped-query attention
    head_dim: int | None = None  # None = d_model // n_heads
    d_ff: int | None = None  # None = 4*d_model (gelu) or the Llama 8/3 rule rounded (swiglu)
    max_seq_len: int = 1024
    norm: Literal["layernorm", "rmsnorm"] = "layernorm"
    norm_eps: float = 1e-5
    pos: Literal["learned", "rope"] = "learned"
    rope_theta: float = 10000.0
    rope_scaling: RopeScaling | None = None  # Llama 3.1 long-context frequency rescaling
    mlp: Literal["gelu", "swiglu"] = "gelu"
    use_bias: bool = True  # GPT-2 has biases in every linear layer; Llama has none
    qkv_bias: bool = False  # biases on q/k/v even without use_bias (Qwen2)
    qk_norm: bool = False  # per-head RMSNorm of queries and keys before RoPE (Qwen3)
    tie_embeddings: bool = True
    dtype: str = "float32"  # compute dtype (bf16 on accelerators)
    param_dtype: str = "float32"
    remat: Literal["none", "full", "dots"] = "none"  # activation checkpointing per block
    init_std: float = 0.02

    def __post_init__(self):
        if isinstance(self.rope_scaling, dict):
            object.__setattr__(self, "rope_scaling", RopeScaling(**self.rope_scaling))
        if self.rope_scaling is not None and self.pos != "rope":
            raise ValueError("model.rope_scaling needs pos='rope'")
        if self.d_model % self.n_heads and self.head_dim is None:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.n_heads % self.kv_heads:
            raise ValueError(f"n_heads={self.n_heads} is not a multiple of "
                             f"n_kv_heads={self.kv_heads}")
        choices = {"norm": ("layernorm", "rmsnorm"), "pos": ("learned", "rope"),
                   "mlp": ("gelu", "swiglu"), "remat": ("none", "full", "dots")}
        for field, allowed in choices.items():
            if getattr(self, field) not in allowed:
                raise ValueError(f"model.{field}={getattr(self, field)!r}; expected one of "
                                 f"{allowed}")

    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads or self.n_heads

    @property
    def head_size(self) -> int:
        return self.head_dim or self.d_model // self.n_heads

    @property
    def ff_size(self) -> int:
        if self.d_ff:
            return self.d_ff
        if self.mlp == "gelu":
            return 4 * self.d_model
        hidden = int(2 * 4 * self.d_model / 3)
        return 256 * ((hidden + 255) // 256)  # Llama rounds to a multiple of 256

    @property
    def compute_dtype(self) -> jnp.dtype:
        return jnp.dtype(self.dtype)

    @property
    def params_dtype(self) -> jnp.dtype:
        return jnp.dtype(self.param_dtype)

    @property
    def has_qkv_bias(self) -> bool:
        return self.use_bias or self.qkv_bias

    def num_params(self, *, include_embedding: bool = True) -> int:
        """Parameter count, computed from the shapes (matches the initialised pytree)."""
        d, h, kv, hd, f = self.d_model, self.n_heads, self.kv_heads, self.head_size, self.ff_size
        bias = self.use_bias
        attn = (d * (h + 2 * kv) * hd + h * hd * d + self.has_qkv_bias * (h + 2 * kv) * hd
                + bias * d + self.qk_norm * 2 * hd)
        n_in = 2 if self.mlp == "swiglu" else 1
        mlp = n_in * d * f + f * d + bias * (n_in * f + d)
        norm = d * (2 if self.norm == "layernorm" else 1)
        per_layer = attn + mlp + 2 * norm
        total = self.n_layers * per_layer + norm
        emb = self.vocab_size * d + (0 if self.tie_embeddings else self.vocab_size * d)
        if self.pos == "learned":
            emb += self.max_seq_len * d
        return total + (emb if include_embedding else 0)

    def flops_per_token(self, seq_len: int) -> float:
        """Training FLOPs per token (6N + attention), the PaLM-paper estimate used for MFU."""
        n = self.num_params(include_embedding=False) + self.vocab_size * self.d_model
        attn = 12 * self.n_layers * self.n_heads * self.head_size * seq_len
        return 6 * n + attn
