"""Feed-forward blocks: GPT-2's GELU MLP and Llama's SwiGLU."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from llm_jax.models.config import ModelConfig
from llm_jax.nn.linear import linear


class MLP(nn.Module):
    cfg: ModelConfig

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        cfg = self.cfg
        out_std = cfg.init_std / (2 * cfg.n_layers) ** 0.5  # GPT-2: scale residual projections
        if cfg.mlp == "swiglu":
            gate = linear(cfg.d_model, cfg.ff_size, ("embed",), ("mlp",), cfg, "gate")(x)
            up = linear(cfg.d_model, cfg.ff_size, ("embed",), ("mlp",), cfg, "up")(x)
            h = jax.nn.silu(gate) * up
        else:
            h = jax.nn.gelu(linear(cfg.d_model, cfg.ff_size, ("embed",), ("mlp",), cfg, "fc_in")(x),
                            approximate=True)  # GPT-2's "gelu_new"
        h = nn.with_logical_constraint(h, ("act_batch", "act_seq", "act_mlp"))
        return linear(cfg.ff_size, cfg.d_model, ("mlp",), ("embed",), cfg, "fc_out", std=out_std)(h)
