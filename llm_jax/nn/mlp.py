"""Feed-forward blocks: GPT-2's GELU MLP and Llama's SwiGLU."""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
from flax import linen as nn

from llm_jax.nn.linear import linear


class MLP(nn.Module):
    """d_model → d_ff → d_model; `out_std` scales the residual projection's init (GPT-2)."""

    d_model: int
    d_ff: int
    kind: Literal["gelu", "swiglu"] = "gelu"
    use_bias: bool = True
    init_std: float = 0.02
    out_std: float = 0.02
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        dense = lambda n_in, n_out, in_ax, out_ax, name, std: linear(  # noqa: E731
            n_in, n_out, in_ax, out_ax, name, use_bias=self.use_bias, std=std,
            dtype=self.dtype, param_dtype=self.param_dtype)
        d, f, std = self.d_model, self.d_ff, self.init_std
        if self.kind == "swiglu":
            gate = dense(d, f, ("embed",), ("mlp",), "gate", std)(x)
            up = dense(d, f, ("embed",), ("mlp",), "up", std)(x)
            h = jax.nn.silu(gate) * up
        else:
            h = jax.nn.gelu(dense(d, f, ("embed",), ("mlp",), "fc_in", std)(x),
                            approximate=True)  # GPT-2's "gelu_new"
        h = nn.with_logical_constraint(h, ("act_batch", "act_seq", "act_mlp"))
        return dense(f, d, ("mlp",), ("embed",), "fc_out", self.out_std)(h)
