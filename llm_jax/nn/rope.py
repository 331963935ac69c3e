"""Rotary position embeddings, in the "rotate half" layout Hugging Face Llama checkpoints use.

Using the same layout as the checkpoints means q/k weights import without a permutation.
`RopeScaling` is Llama 3.x's frequency rescaling for long contexts ("llama3" in HF configs).
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class RopeScaling:
    """Llama 3.1's RoPE rescaling: low frequencies slowed by `factor`, high ones kept, and a
    smooth blend between the two wavelength bands set by the low/high frequency factors."""

    factor: float
    low_freq_factor: float
    high_freq_factor: float
    original_max_position_embeddings: int

    def __post_init__(self):
        if self.high_freq_factor <= self.low_freq_factor:
            raise ValueError(f"rope_scaling: high_freq_factor={self.high_freq_factor} must "
                             f"exceed low_freq_factor={self.low_freq_factor}")


def rope_frequencies(head_dim: int, theta: float,
                     scaling: RopeScaling | None = None) -> np.ndarray:
    """Inverse frequencies [head_dim/2] in fp32, computed in fp32 as the HF reference does (the
    llama3 band tests compare fp32 wavelengths, so the rounding must match too: `c / x` is
    written `c * (1 / x)` below because that is how torch evaluates a scalar over a tensor)."""
    exponents = np.arange(0, head_dim, 2, dtype=np.float32) / np.float32(head_dim)
    inv_freq = np.float32(1.0) / np.power(np.float32(theta), exponents, dtype=np.float32)
    if scaling is None:
        return inv_freq
    old_len = np.float32(scaling.original_max_position_embeddings)
    low_wavelen = old_len / np.float32(scaling.low_freq_factor)
    high_wavelen = old_len / np.float32(scaling.high_freq_factor)
    wavelen = np.float32(2 * math.pi) * (np.float32(1) / inv_freq)
    factor = np.float32(scaling.factor)
    scaled = np.where(wavelen > low_wavelen, inv_freq / factor, inv_freq)
    smooth = ((old_len * (np.float32(1) / wavelen) - np.float32(scaling.low_freq_factor))
              / np.float32(scaling.high_freq_factor - scaling.low_freq_factor))
    blended = (1 - smooth) * scaled / factor + smooth * scaled
    medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
    return np.where(medium, blended, scaled).astype(np.float32)


def apply_rope(x: jnp.ndarray, positions: jnp.ndarray, theta: float,
               scaling: RopeScaling | None = None) -> jnp.ndarray:
    """Rotate `x` [batch, seq, heads, head_dim] by angles from integer `positions` [batch, seq]."""
    head_dim = x.shape[-1]
    inv_freq = jnp.asarray(rope_frequencies(head_dim, theta, scaling))
    angles = positions.astype(jnp.float32)[..., None] * inv_freq  # [b, s, head_dim/2]
    angles = jnp.concatenate([angles, angles], axis=-1)[:, :, None, :]  # broadcast over heads
    cos, sin = jnp.cos(angles), jnp.sin(angles)
    xf = x.astype(jnp.float32)
    half = head_dim // 2
    rotated = jnp.concatenate([-xf[..., half:], xf[..., :half]], axis=-1)
    return (xf * cos + rotated * sin).astype(x.dtype)
