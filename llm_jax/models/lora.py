"""LoRA: low-rank adapters on a frozen model's projections (Hu et al. 2021, arXiv:2106.09685).

    init = adapter_init_fn(jax.eval_shape(model_init), LoraConfig(rank=8))  # boxed, like params
    with adapted(adapters, cfg, rng):                 # training: y = x·W + s·drop(x)·A·B
        logits = model.apply({"params": base}, tokens)
    params = merge(base, adapters, cfg)               # plain weights W + s·A·B: eval, export

A is uniform ±1/√fan_in (PEFT's init), B zeros, s = alpha / rank. Adapters shard like the
kernel they adapt, never along `lora_rank`. Training runs them beside the frozen kernel, so
no merged kernel or kernel gradient is built."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import string
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
from flax import linen as nn
from flax import traverse_util

from llm_jax.errors import ConfigError
from llm_jax.nn.linear import Linear

if TYPE_CHECKING:  # the model is only passed through to its own init
    from llm_jax.models.transformer import Transformer

RANK_AXIS = "lora_rank"  # no rule set names it, so the rank dimension is never split
# How many leading kernel dims are inputs, per projection name (`Linear` kernels are
# W[in..., out...]; the attention output contracts heads and head_dim).
INPUT_DIMS = {"query": 1, "key": 1, "value": 1, "out": 2, "up": 1, "gate": 1, "fc_in": 1,
              "fc_out": 1, "lm_head": 1}


@dataclasses.dataclass(frozen=True)
class LoraConfig:
    """`rank` 0 = no adapters. `targets` are projection (module) names from `INPUT_DIMS`."""

    rank: int = 0
    alpha: float = 16.0
    dropout: float = 0.0
    targets: tuple[str, ...] = ("query", "key", "value", "out")

    def __post_init__(self):
        if self.rank < 0:
            raise ValueError(f"rank={self.rank} must be >= 0")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout={self.dropout} must be in [0, 1)")
        unknown = sorted(set(self.targets) - set(INPUT_DIMS))
        if unknown:
            raise ValueError(f"unknown targets {unknown}; choose from {sorted(INPUT_DIMS)}")
        if self.rank and not self.targets:
            raise ValueError("rank > 0 but no targets")

    @property
    def scale(self) -> float:
        return self.alpha / self.rank


def _targeted(flat_params: Mapping[tuple[str, ...], object], cfg: LoraConfig):
    """(module path, kernel) of every targeted kernel, in a fixed (sorted) order."""
    for path in sorted(flat_params):
        if path[-1] == "kernel" and len(path) >= 2 and path[-2] in cfg.targets:
            yield path[:-1], flat_params[path]


def adapter_init_fn(boxed_params, cfg: LoraConfig) -> Callable[[jax.Array], dict]:
    """`init(rng) -> boxed adapters` for params shaped like `boxed_params` (real or from
    `jax.eval_shape`, carrying logical names as the model creates them)."""
    flat = traverse_util.flatten_dict(boxed_params, is_leaf=lambda _, x: isinstance(
        x, nn.LogicallyPartitioned))
    specs = []
    for module, kernel in _targeted(flat, cfg):
        n_in = INPUT_DIMS[module[-1]]
        shape, names = kernel.value.shape, tuple(kernel.names)
        specs.append((module, shape[:n_in], shape[n_in:], names[:n_in], names[n_in:]))
    if cfg.rank and not specs:
        raise ValueError(f"no kernel of the model matches lora targets {list(cfg.targets)}")

    def init(rng: jax.Array) -> dict:
        out = {}
        for i, (module, in_shape, out_shape, in_names, out_names) in enumerate(specs):
            bound = 1.0 / math.sqrt(math.prod(in_shape))
            a = jax.random.uniform(jax.random.fold_in(rng, i), in_shape + (cfg.rank,),
                                   jnp.float32, -bound, bound)
            b = jnp.zeros((cfg.rank,) + out_shape, jnp.float32)
            out[module + ("lora_a",)] = nn.LogicallyPartitioned(a, in_names + (RANK_AXIS,))
            out[module + ("lora_b",)] = nn.LogicallyPartitioned(b, (RANK_AXIS,) + out_names)
        return traverse_util.unflatten_dict(out)

    return init


def _modules(adapters) -> dict[tuple[str, ...], tuple[jax.Array, jax.Array]]:
    flat = traverse_util.flatten_dict(adapters)
    return {path[:-1]: (flat[path[:-1] + ("lora_a",)], flat[path])
            for path in flat if path[-1] == "lora_b"}


def delta(a: jax.Array, b: jax.Array, scale: float) -> jax.Array:
    """s·A·B in the kernel's layout [in..., out...]."""
    return scale * jnp.tensordot(a, b, axes=1)


def merge(base, adapters, cfg: LoraConfig):
    """Plain params: every adapted kernel W becomes W + s·A·B (in W's dtype); the rest is
    `base` itself. Pure, so it runs under `jit` with the params' shardings."""
    flat = traverse_util.flatten_dict(base)
    for module, (a, b) in _modules(adapters).items():
        kernel = flat[module + ("kernel",)]
        flat[module + ("kernel",)] = (kernel + delta(a, b, cfg.scale)).astype(kernel.dtype)
    return traverse_util.unflatten_dict(flat)


def _adapter_output(x, a, b, n_in: int, scale: float, dtype, rate: float, rng):
    """s·drop(x)·A·B for x [..., in...]."""
    if rate > 0.0:
        keep = jax.random.bernoulli(rng, 1.0 - rate, x.shape)
        x = jnp.where(keep, x / (1.0 - rate), 0.0)
    letters = string.ascii_letters
    batch = letters[: x.ndim - n_in]
    ins = letters[x.ndim - n_in: x.ndim]
    rank = letters[x.ndim]
    outs = letters[x.ndim + 1: x.ndim + b.ndim]
    h = jnp.einsum(f"{batch}{ins},{ins}{rank}->{batch}{rank}", x.astype(dtype), a.astype(dtype))
    return scale * jnp.einsum(f"{batch}{rank},{rank}{outs}->{batch}{outs}", h, b.astype(dtype))


@contextlib.contextmanager
def adapted(adapters, cfg: LoraConfig, rng: jax.Array | None = None) -> Iterator[None]:
    """Here every targeted `Linear` adds its adapter's output (trace under jit/grad)."""
    by_module = _modules(adapters)
    index = {m: i for i, m in enumerate(sorted(by_module))}
    if cfg.dropout > 0.0 and rng is None:
        raise ValueError("lora dropout > 0 needs an rng")

    def interceptor(next_fun, args, kwargs, context):
        module = context.module
        y = next_fun(*args, **kwargs)
        if not isinstance(module, Linear) or context.method_name != "__call__":
            return y
        found = by_module.get(tuple(module.path))
        if found is None:
            return y
        a, b = found
        key = None if rng is None else jax.random.fold_in(rng, index[tuple(module.path)])
        out = _adapter_output(args[0], a, b, len(module.in_shape), cfg.scale, module.dtype,
                              cfg.dropout, key)
        return y + out.astype(y.dtype)

    with nn.intercept_methods(interceptor):
        yield


def lora_config(config: Mapping) -> LoraConfig:
    """`LoraConfig` from a config's `lora` section (absent = no adapters)."""
    section = config.get("lora") if hasattr(config, "get") else None
    if section is None:
        return LoraConfig()
    fields = section.to_dict() if hasattr(section, "to_dict") else dict(section)
    try:
        return LoraConfig(rank=int(fields["rank"]), alpha=float(fields["alpha"]),
                          dropout=float(fields["dropout"]), targets=tuple(fields["targets"]))
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"lora: {e}") from None


def model_adapter_init(model: Transformer, cfg: LoraConfig) -> Callable[[jax.Array], dict]:
    """`init(rng) -> boxed adapters` for `model`'s targeted kernels."""
    boxed = jax.eval_shape(lambda r: model.init(r, jax.numpy.zeros((1, 1), "int32"))["params"],
                           jax.random.PRNGKey(0))
    try:
        return adapter_init_fn(boxed, cfg)
    except ValueError as e:
        raise ConfigError(f"lora: {e}") from None
