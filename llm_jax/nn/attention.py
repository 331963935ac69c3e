"""Causal self-attention with grouped-query heads, RoPE, segment masking and a KV cache."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from llm_jax.nn.linear import linear
from llm_jax.nn.norms import make_norm
from llm_jax.nn.rope import RopeScaling, apply_rope


def attention_mask(segment_ids: jnp.ndarray | None, batch: int, length: int) -> jnp.ndarray:
    """Boolean [batch, 1, q, k] mask for training: causal, and within one packed document."""
    causal = jnp.tril(jnp.ones((length, length), bool))[None, None]
    if segment_ids is None:
        return jnp.broadcast_to(causal, (batch, 1, length, length))
    same_doc = segment_ids[:, None, :, None] == segment_ids[:, None, None, :]
    return causal & same_doc


def cache_mask(valid: jnp.ndarray, index: jnp.ndarray, q_len: int) -> jnp.ndarray:
    """Boolean [batch, 1, q, max_len] decode mask: slots ≤ index+i, and always itself."""
    q_slots = index + jnp.arange(q_len)
    k_slots = jnp.arange(valid.shape[1])
    causal = k_slots[None, :] <= q_slots[:, None]
    own = k_slots[None, :] == q_slots[:, None]
    return ((causal[None] & valid[:, None, :]) | own[None])[:, None]


def single_query_attention(q, k, v, mask):
    """One new token per row over a heads-major cache (grouped as `dot_product_attention`).

    q [b, 1, heads, d]; k, v [b, kv_heads, s, d]; mask [b, 1, 1, s]."""
    b, _, heads, d = q.shape
    kv_heads = k.shape[1]
    q = q.reshape(b, kv_heads, heads // kv_heads, d)
    scores = jnp.einsum("bkgd,bksd->bkgs", q, k, preferred_element_type=jnp.float32)
    scores = jnp.where(mask[:, :, None, 0], scores / jnp.sqrt(d).astype(scores.dtype), -1e30)
    probs = jax.nn.softmax(scores, axis=-1).astype(v.dtype)
    out = jnp.einsum("bkgs,bksd->bkgd", probs, v)
    return out.reshape(b, 1, heads, d)


class Attention(nn.Module):
    """Multi-head / grouped-query self-attention with each HF family's options.

    `qkv_bias` (Qwen2), `out_bias` (GPT-2), `qk_norm_eps` (Qwen3), Llama 3 RoPE scaling
    (`rope_theta=None`: learned positions)."""

    d_model: int
    n_heads: int
    kv_heads: int
    head_dim: int
    rope_theta: float | None = None
    rope_scaling: RopeScaling | None = None
    qkv_bias: bool = False
    out_bias: bool = False
    qk_norm_eps: float | None = None
    init_std: float = 0.02
    out_std: float = 0.02
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    def _dense(self, n_in, n_out, in_axes, out_axes, name, bias, std):
        return linear(n_in, n_out, in_axes, out_axes, name, use_bias=bias, std=std,
                      dtype=self.dtype, param_dtype=self.param_dtype)

    @nn.compact
    def __call__(self, x, positions, mask, cache_kv=None, cache_index=None):
        h, kv, hd, d = self.n_heads, self.kv_heads, self.head_dim, self.d_model
        bias, std = self.qkv_bias, self.init_std
        q = self._dense(d, (h, hd), ("embed",), ("heads", "head_dim"), "query", bias, std)(x)
        k = self._dense(d, (kv, hd), ("embed",), ("kv_heads", "head_dim"), "key", bias, std)(x)
        v = self._dense(d, (kv, hd), ("embed",), ("kv_heads", "head_dim"), "value", bias,
                        std)(x)
        if self.qk_norm_eps is not None:
            norm = lambda name: make_norm("rmsnorm", self.qk_norm_eps, self.dtype,  # noqa: E731
                                          self.param_dtype, name)
            q, k = norm("query_norm")(q), norm("key_norm")(k)
        if self.rope_theta is not None:
            q = apply_rope(q, positions, self.rope_theta, self.rope_scaling)
            k = apply_rope(k, positions, self.rope_theta, self.rope_scaling)
        q = nn.with_logical_constraint(q, ("act_batch", "act_seq", "act_heads", None))

        new_kv = None
        if cache_kv is not None:  # write the new tokens' keys/values at slot `cache_index`
            cache_k, cache_v = cache_kv
            start = (0, 0, cache_index, 0)
            heads_major = lambda x, c: x.transpose(0, 2, 1, 3).astype(c.dtype)  # noqa: E731
            new_kv = (jax.lax.dynamic_update_slice(cache_k, heads_major(k, cache_k), start),
                      jax.lax.dynamic_update_slice(cache_v, heads_major(v, cache_v), start))

        if new_kv is not None:
            k, v = new_kv
            if q.shape[1] > 1:  # a prefill attends over the whole cache, slot-major
                k, v = k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3)
        k, v = k.astype(q.dtype), v.astype(q.dtype)
        if new_kv is not None and q.shape[1] == 1:  # one decode step
            out = single_query_attention(q, k, v, mask)
        else:  # the XLA implementation everywhere: with a dense mask (segments, padding)
            # jax 0.10 picks no flash kernel, on GPU either
            out = jax.nn.dot_product_attention(q, k, v, mask=mask)
        out = nn.with_logical_constraint(out, ("act_batch", "act_seq", "act_heads", None))
        y = self._dense((h, hd), d, ("heads", "head_dim"), ("embed",), "out", self.out_bias,
                        self.out_std)(out)
        return y, new_kv
