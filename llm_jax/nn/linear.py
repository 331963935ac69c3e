"""`Linear`: a multi-axis dense layer whose kernel is created in its final, logically named shape.

(`DenseGeneral` reshapes a 2-D kernel, breaking partitioning of q/k/v kernels.)"""

from __future__ import annotations

import string

import jax.numpy as jnp
from flax import linen as nn


class Linear(nn.Module):
    """y = x·W (+ b), contracting the last len(in_axes) dims of x with W[in..., out...]."""

    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    in_axes: tuple[str, ...]
    out_axes: tuple[str, ...]
    use_bias: bool
    std: float
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        kernel = self.param(
            "kernel",
            nn.with_logical_partitioning(nn.initializers.normal(self.std),
                                         self.in_axes + self.out_axes),
            self.in_shape + self.out_shape, self.param_dtype)
        n_in, n_out = len(self.in_shape), len(self.out_shape)
        letters = string.ascii_letters[1:]  # "a" names the one flattened batch dim
        ins = letters[:n_in]
        outs = letters[n_in:n_in + n_out]
        lead = x.shape[:x.ndim - n_in]
        # The leading (batch, sequence) dims go in as one: XLA:CPU otherwise transposes the
        # rank-3 activation gradients through memory for each weight gradient, and a
        # transformer's backward pass ran 1.4x slower. The same dot on every backend; the
        # merged dim keeps the batch sharding (the sequence dim is never sharded).
        y = jnp.einsum(f"a{ins},{ins}{outs}->a{outs}",
                       x.reshape((-1,) + x.shape[x.ndim - n_in:]).astype(self.dtype),
                       kernel.astype(self.dtype))
        y = y.reshape(lead + self.out_shape)
        if self.use_bias:
            bias = self.param(
                "bias", nn.with_logical_partitioning(nn.initializers.zeros, self.out_axes),
                self.out_shape, self.param_dtype)
            y = y + bias.astype(self.dtype)
        return y


def linear(in_shape, out_shape, in_axes, out_axes, name: str, *, use_bias: bool, std: float,
           dtype=jnp.float32, param_dtype=jnp.float32) -> Linear:
    """A `Linear` whose shapes may be given as ints or tuples."""
    as_tuple = lambda s: tuple(s) if isinstance(s, tuple | list) else (s,)  # noqa: E731
    return Linear(as_tuple(in_shape), as_tuple(out_shape), tuple(in_axes), tuple(out_axes),
                  use_bias, std, dtype, param_dtype, name=name)
