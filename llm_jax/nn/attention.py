"""Causal self-attention with grouped-query heads, RoPE, segment masking and a KV cache.

Training calls it without a cache on packed rows (the mask keeps documents apart). Generation
calls it with a preallocated cache: new keys/values are written at `cache.index` and queries
attend to every valid slot at or before their own.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn
from flax import struct

from llm_jax.models.config import ModelConfig
from llm_jax.nn.linear import linear
from llm_jax.nn.rope import apply_rope


@struct.dataclass
class KVCache:
    """Per-layer keys/values [batch, kv_heads, max_len, head_dim] plus shared bookkeeping.

    Heads come before slots so that one decode step's attention is a batched matrix-vector
    product over contiguous memory, with no transpose of the cache (3x faster than the
    [batch, slot, head, dim] layout on CPU at 256 slots). `valid[b, j]` says slot j holds a
    real token for row b (left padding of ragged prompts is invalid); `index` is the next slot
    to write, the same for every row.
    """

    keys: tuple[jnp.ndarray, ...]
    values: tuple[jnp.ndarray, ...]
    valid: jnp.ndarray  # bool [batch, max_len]
    index: jnp.ndarray  # int32 scalar

    @classmethod
    def init(cls, cfg: ModelConfig, batch: int, max_len: int) -> KVCache:
        shape = (batch, cfg.kv_heads, max_len, cfg.head_size)
        zeros = tuple(jnp.zeros(shape, cfg.compute_dtype) for _ in range(cfg.n_layers))
        return cls(keys=zeros, values=tuple(jnp.zeros_like(z) for z in zeros),
                   valid=jnp.zeros((batch, max_len), bool), index=jnp.zeros((), jnp.int32))

    @property
    def max_len(self) -> int:
        return self.valid.shape[1]

    def grow(self, max_len: int) -> KVCache:
        """The same cache with empty (invalid) slots appended up to `max_len`."""
        extra = max_len - self.max_len
        if extra <= 0:
            return self
        pad_slots = lambda x: jnp.pad(x, [(0, 0), (0, 0), (0, extra), (0, 0)])  # noqa: E731
        return KVCache(keys=tuple(map(pad_slots, self.keys)),
                       values=tuple(map(pad_slots, self.values)),
                       valid=jnp.pad(self.valid, [(0, 0), (0, extra)]), index=self.index)


def attention_mask(segment_ids: jnp.ndarray | None, batch: int, length: int) -> jnp.ndarray:
    """Boolean [batch, 1, q, k] mask for training: causal, and within one packed document."""
    causal = jnp.tril(jnp.ones((length, length), bool))[None, None]
    if segment_ids is None:
        return jnp.broadcast_to(causal, (batch, 1, length, length))
    same_doc = segment_ids[:, None, :, None] == segment_ids[:, None, None, :]
    return causal & same_doc


def cache_mask(valid: jnp.ndarray, index: jnp.ndarray, q_len: int) -> jnp.ndarray:
    """Boolean [batch, 1, q, max_len] mask for decoding against a cache already updated with the
    new tokens: a query at slot index+i sees valid slots ≤ index+i, and always itself (so rows of
    left padding never have an empty softmax)."""
    q_slots = index + jnp.arange(q_len)
    k_slots = jnp.arange(valid.shape[1])
    causal = k_slots[None, :] <= q_slots[:, None]
    own = k_slots[None, :] == q_slots[:, None]
    return ((causal[None] & valid[:, None, :]) | own[None])[:, None]


def single_query_attention(q, k, v, mask):
    """Attention of one new token per row over a heads-major cache.

    q [b, 1, heads, d]; k, v [b, kv_heads, s, d]; mask [b, 1, 1, s]. Query heads are grouped
    by the kv head they share (head i uses kv head i // (heads / kv_heads), as
    `jax.nn.dot_product_attention` does), so grouped-query attention needs no repeated cache.
    Same result as `dot_product_attention` to float rounding.
    """
    b, _, heads, d = q.shape
    kv_heads = k.shape[1]
    q = q.reshape(b, kv_heads, heads // kv_heads, d)
    scores = jnp.einsum("bkgd,bksd->bkgs", q, k, preferred_element_type=jnp.float32)
    scores = jnp.where(mask[:, :, None, 0], scores / jnp.sqrt(d).astype(scores.dtype), -1e30)
    probs = jax.nn.softmax(scores, axis=-1).astype(v.dtype)
    out = jnp.einsum("bkgs,bksd->bkgd", probs, v)
    return out.reshape(b, 1, heads, d)


class Attention(nn.Module):
    cfg: ModelConfig

    @nn.compact
    def __call__(self, x, positions, mask, cache_kv=None, cache_index=None):
        cfg = self.cfg
        h, kv, hd = cfg.n_heads, cfg.kv_heads, cfg.head_size
        q = linear(cfg.d_model, (h, hd), ("embed",), ("heads", "head_dim"), cfg, "query")(x)
        k = linear(cfg.d_model, (kv, hd), ("embed",), ("kv_heads", "head_dim"), cfg, "key")(x)
        v = linear(cfg.d_model, (kv, hd), ("embed",), ("kv_heads", "head_dim"), cfg, "value")(x)
        if cfg.pos == "rope":
            q = apply_rope(q, positions, cfg.rope_theta)
            k = apply_rope(k, positions, cfg.rope_theta)
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
        else:  # XLA on CPU/TPU; cuDNN flash attention is picked on GPU when shapes allow.
            out = jax.nn.dot_product_attention(q, k, v, mask=mask)
        out = nn.with_logical_constraint(out, ("act_batch", "act_seq", "act_heads", None))
        out_std = cfg.init_std / (2 * cfg.n_layers) ** 0.5
        y = linear((h, hd), cfg.d_model, ("heads", "head_dim"), ("embed",), cfg, "out",
                   std=out_std)(out)
        return y, new_kv
