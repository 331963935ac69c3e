"""The one decoder-only `Transformer`: GPT-2, Llama and Qwen are settings of its `ModelConfig`.

    logits = Transformer(cfg).apply({"params": p}, tokens, positions, segment_ids)
    logits, cache = Transformer(cfg).apply({"params": p}, tokens, positions, cache=cache)

`segment_ids` (0 = padding) keep packed documents apart."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from llm_jax.models.config import ModelConfig
from llm_jax.models.kv_cache import KVCache
from llm_jax.nn.attention import Attention, attention_mask, cache_mask
from llm_jax.nn.linear import Linear
from llm_jax.nn.mlp import MLP
from llm_jax.nn.norms import make_norm

ACT = ("act_batch", "act_seq", "act_embed")


def positions_from_mask(mask: jnp.ndarray) -> jnp.ndarray:
    """Positions counting only real tokens, so a left-padded row starts at position 0."""
    return jnp.maximum(jnp.cumsum(mask.astype(jnp.int32), axis=-1) - 1, 0)


class Block(nn.Module):
    """Pre-norm residual block: x + attn(norm(x)), then x + mlp(norm(x))."""

    cfg: ModelConfig

    @nn.compact
    def __call__(self, x, positions, mask, cache_kv=None, cache_index=None):
        cfg = self.cfg
        norm = lambda name: make_norm(cfg.norm, cfg.norm_eps, cfg.compute_dtype,  # noqa: E731
                                      cfg.params_dtype, name)
        out_std = cfg.init_std / (2 * cfg.n_layers) ** 0.5  # GPT-2: scaled residual projections
        dtypes = dict(dtype=cfg.compute_dtype, param_dtype=cfg.params_dtype)
        attention = Attention(
            cfg.d_model, cfg.n_heads, cfg.kv_heads, cfg.head_size,
            rope_theta=cfg.rope_theta if cfg.pos == "rope" else None,
            rope_scaling=cfg.rope_scaling, qkv_bias=cfg.has_qkv_bias, out_bias=cfg.use_bias,
            qk_norm_eps=cfg.norm_eps if cfg.qk_norm else None, init_std=cfg.init_std,
            out_std=out_std, name="attn", **dtypes)
        y, new_kv = attention(norm("attn_norm")(x), positions, mask, cache_kv, cache_index)
        x = nn.with_logical_constraint(x + y, ACT)
        mlp = MLP(cfg.d_model, cfg.ff_size, cfg.mlp, cfg.use_bias, init_std=cfg.init_std,
                  out_std=out_std, name="mlp", **dtypes)
        x = x + mlp(norm("mlp_norm")(x))
        return nn.with_logical_constraint(x, ACT), new_kv


def _block_class(cfg: ModelConfig) -> type[nn.Module]:
    if cfg.remat == "none":
        return Block
    policy = (jax.checkpoint_policies.dots_with_no_batch_dims_saveable
              if cfg.remat == "dots" else None)
    return nn.remat(Block, policy=policy, prevent_cse=True)


class Transformer(nn.Module):
    cfg: ModelConfig

    def setup(self):
        cfg = self.cfg
        emb_init = nn.initializers.normal(cfg.init_std)
        self.embed = nn.Embed(
            cfg.vocab_size, cfg.d_model, dtype=cfg.compute_dtype, param_dtype=cfg.params_dtype,
            embedding_init=nn.with_logical_partitioning(emb_init, ("vocab", "embed")))
        if cfg.pos == "learned":
            self.pos_embed = nn.Embed(
                cfg.max_seq_len, cfg.d_model, dtype=cfg.compute_dtype,
                param_dtype=cfg.params_dtype,
                embedding_init=nn.with_logical_partitioning(
                    nn.initializers.normal(0.01), ("max_len", "embed")))
        block = _block_class(cfg)
        self.blocks = [block(cfg, name=f"block_{i}") for i in range(cfg.n_layers)]
        self.final_norm = make_norm(cfg.norm, cfg.norm_eps, cfg.compute_dtype, cfg.params_dtype,
                                    "final_norm")
        if not cfg.tie_embeddings:
            self.lm_head = Linear((cfg.d_model,), (cfg.vocab_size,), ("embed",), ("vocab",),
                                  use_bias=False, std=cfg.init_std, dtype=cfg.compute_dtype,
                                  param_dtype=cfg.params_dtype)

    def __call__(self, tokens: jnp.ndarray, positions: jnp.ndarray | None = None,
                 segment_ids: jnp.ndarray | None = None, *, cache: KVCache | None = None,
                 features_only: bool = False):
        hidden, cache = self.features(tokens, positions, segment_ids, cache=cache)
        out = hidden if features_only else self.logits(hidden)
        return out if cache is None else (out, cache)

    def features(self, tokens, positions=None, segment_ids=None, *, cache=None):
        """Final-norm hidden states [batch, seq, d_model] (and the updated cache)."""
        cfg = self.cfg
        batch, length = tokens.shape
        if positions is None:
            start = 0 if cache is None else cache.index
            positions = jnp.broadcast_to(start + jnp.arange(length), (batch, length))
        x = self.embed(tokens)
        if cfg.pos == "learned":
            x = x + self.pos_embed(positions)
        x = nn.with_logical_constraint(x.astype(cfg.compute_dtype), ACT)

        if cache is None:
            mask = attention_mask(segment_ids, batch, length)
        else:
            new_valid = (jnp.ones((batch, length), bool) if segment_ids is None
                         else segment_ids > 0)
            valid = jax.lax.dynamic_update_slice(cache.valid, new_valid, (0, cache.index))
            mask = cache_mask(valid, cache.index, length)

        new_keys, new_values = [], []
        for i, block in enumerate(self.blocks):
            kv = None if cache is None else (cache.keys[i], cache.values[i])
            x, new_kv = block(x, positions, mask, kv, None if cache is None else cache.index)
            if new_kv is not None:
                new_keys.append(new_kv[0])
                new_values.append(new_kv[1])
        x = self.final_norm(x)
        if cache is not None:
            cache = KVCache(keys=tuple(new_keys), values=tuple(new_values), valid=valid,
                            index=cache.index + length)
        return x, cache

    def logits(self, hidden: jnp.ndarray) -> jnp.ndarray:
        """LM head; logits come back in fp32 whatever the compute dtype, for a stable softmax."""
        if self.cfg.tie_embeddings:
            logits = self.embed.attend(hidden)
        else:
            logits = self.lm_head(hidden)
        return nn.with_logical_constraint(logits.astype(jnp.float32),
                                          ("act_batch", "act_seq", "act_vocab"))
