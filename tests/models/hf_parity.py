"""Shared pieces of the Hugging Face parity tests: random torch models, our random params,
and both sides' fp32 logits."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from llm_jax.models.transformer import Transformer
from tests.helpers import require, tiny_config

torch = require("torch")

TOL = 1e-4
VOCAB = 101


def randomize(model, seed=0):
    """Non-trivial values everywhere, norms included, so no mapping mistake can hide."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            is_scale = ("ln" in name or "norm" in name) and name.endswith("weight")
            p.copy_(float(is_scale) + 0.2 * torch.randn(p.shape, generator=gen))
    return model.eval()


def random_tokens(seed=0, length=48):
    return np.random.default_rng(seed).integers(0, VOCAB, (2, length))


def torch_logits(model, tokens):
    with torch.no_grad():
        return model(torch.tensor(tokens)).logits.float().numpy()


def our_logits(cfg, params, tokens):
    # Jitted: one compile per config instead of one per op on the eager path.
    forward = jax.jit(lambda p, t: Transformer(cfg).apply({"params": p}, t))
    return np.asarray(forward(params, jnp.asarray(tokens)))


def random_ours(flavour, **overrides):
    """Our model's param tree (shapes and dtypes from its own init) with every value random:
    kernels and embeddings, and norms and biases moved well off their 1 / 0 init, so a swapped
    or misplaced tensor cannot hide. Drawn in numpy because an eager init of even this tiny
    model spends seconds compiling one CPU kernel per op."""
    cfg = tiny_config(flavour, vocab_size=VOCAB, max_seq_len=64, **overrides)
    shapes = jax.eval_shape(lambda: nn.meta.unbox(
        Transformer(cfg).init(jax.random.PRNGKey(0), jnp.zeros((1, 8), jnp.int32))["params"]))
    rng = np.random.default_rng(1)

    def draw(path, leaf):
        base = 1.0 if jax.tree_util.keystr(path[-1:]) == "['scale']" else 0.0
        return (base + 0.2 * rng.standard_normal(leaf.shape)).astype(leaf.dtype)

    return cfg, jax.tree_util.tree_map_with_path(draw, shapes)


def explicit(cfg):
    """The config with the sizes it may leave to defaults spelled out, as config files do."""
    return dataclasses.replace(cfg, d_ff=cfg.ff_size, n_kv_heads=cfg.kv_heads,
                               head_dim=cfg.head_size)


