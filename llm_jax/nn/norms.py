"""Normalisation layers, with logically-partitioned scales (GPT-2 LayerNorm, Llama RMSNorm)."""

from __future__ import annotations

from flax import linen as nn


def make_norm(kind: str, eps: float, dtype, param_dtype, name: str) -> nn.Module:
    """LayerNorm (scale + bias) or RMSNorm (scale only), computed in fp32 for stability."""
    scale_init = nn.with_logical_partitioning(nn.initializers.ones, ("norm",))
    if kind == "layernorm":
        bias_init = nn.with_logical_partitioning(nn.initializers.zeros, ("norm",))
        return nn.LayerNorm(epsilon=eps, dtype=dtype, param_dtype=param_dtype,
                            scale_init=scale_init, bias_init=bias_init, name=name)
    if kind == "rmsnorm":
        return nn.RMSNorm(epsilon=eps, dtype=dtype, param_dtype=param_dtype,
                          scale_init=scale_init, name=name)
    raise ValueError(f"unknown norm {kind!r}")
