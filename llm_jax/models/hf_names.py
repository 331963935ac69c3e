"""One name table per weight layout: our param path ↔ Hugging Face tensor name + layout.

Import and export walk the same table. A `Layout` maps our kernels [in..., out...] to torch's
[out, in] or GPT-2 `Conv1D`'s [in, out]; GPT-2's fused q/k/v lists three leaves. `read_leaf`
reads any block of one leaf, for sharded loads."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from llm_jax.models.config import ModelConfig
from llm_jax.models.hf_config import weight_layout

Path = tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Layout:
    """`kind`: "same" (identical shape), "flat" (flattened), "matrix" (n_in leading dims of
    ours are the input side; `transpose` for torch's [out, in])."""

    kind: str
    n_in: int = 1
    transpose: bool = False

    def hf_shape(self, shape: Sequence[int]) -> tuple[int, ...]:
        if self.kind == "same":
            return tuple(shape)
        if self.kind == "flat":
            return (math.prod(shape),)
        rows, cols = math.prod(shape[:self.n_in]), math.prod(shape[self.n_in:])
        return (cols, rows) if self.transpose else (rows, cols)

    def to_hf(self, x: np.ndarray) -> np.ndarray:
        if self.kind == "matrix":
            matrix = x.reshape(math.prod(x.shape[:self.n_in]), -1)
            return matrix.T if self.transpose else matrix
        return x.reshape(self.hf_shape(x.shape))


SAME, FLAT = Layout("same"), Layout("flat")
TORCH_LINEAR, TORCH_LINEAR_2 = Layout("matrix", 1, True), Layout("matrix", 2, True)
CONV1D, CONV1D_2 = Layout("matrix", 1, False), Layout("matrix", 2, False)


@dataclasses.dataclass(frozen=True)
class Entry:
    """One HF tensor: its name (without the base-model prefix unless `top_level`), and the
    leaves of ours stored in it, concatenated along its last axis."""

    hf_name: str
    ours: tuple[Path, ...]
    layout: Layout
    top_level: bool = False


def _gpt2_table(cfg: ModelConfig) -> list[Entry]:
    e = lambda name, ours, layout=SAME: Entry(name, (ours,), layout)  # noqa: E731
    table = [e("wte.weight", ("embed", "embedding")), e("wpe.weight", ("pos_embed", "embedding")),
             e("ln_f.weight", ("final_norm", "scale")), e("ln_f.bias", ("final_norm", "bias"))]
    for i in range(cfg.n_layers):
        b, p = f"block_{i}", f"h.{i}."
        for ours, theirs in (("attn_norm", "ln_1"), ("mlp_norm", "ln_2")):
            table += [e(p + theirs + ".weight", (b, ours, "scale")),
                      e(p + theirs + ".bias", (b, ours, "bias"))]
        qkv = ("query", "key", "value")
        table += [
            Entry(p + "attn.c_attn.weight", tuple((b, "attn", n, "kernel") for n in qkv), CONV1D),
            Entry(p + "attn.c_attn.bias", tuple((b, "attn", n, "bias") for n in qkv), FLAT),
            e(p + "attn.c_proj.weight", (b, "attn", "out", "kernel"), CONV1D_2),
            e(p + "attn.c_proj.bias", (b, "attn", "out", "bias")),
            e(p + "mlp.c_fc.weight", (b, "mlp", "fc_in", "kernel"), CONV1D),
            e(p + "mlp.c_fc.bias", (b, "mlp", "fc_in", "bias")),
            e(p + "mlp.c_proj.weight", (b, "mlp", "fc_out", "kernel"), CONV1D),
            e(p + "mlp.c_proj.bias", (b, "mlp", "fc_out", "bias"))]
    return table


def _llama_table(cfg: ModelConfig) -> list[Entry]:
    """Llama, Mistral, Qwen2 and Qwen3: one layout, with optional biases and q/k norms."""
    e = lambda name, ours, layout=SAME: Entry(name, (ours,), layout)  # noqa: E731
    table = [e("embed_tokens.weight", ("embed", "embedding")),
             e("norm.weight", ("final_norm", "scale"))]
    for i in range(cfg.n_layers):
        b, p = f"block_{i}", f"layers.{i}."
        table += [e(p + "input_layernorm.weight", (b, "attn_norm", "scale")),
                  e(p + "post_attention_layernorm.weight", (b, "mlp_norm", "scale"))]
        dense = (("self_attn.q_proj", "attn", "query", TORCH_LINEAR, cfg.has_qkv_bias),
                 ("self_attn.k_proj", "attn", "key", TORCH_LINEAR, cfg.has_qkv_bias),
                 ("self_attn.v_proj", "attn", "value", TORCH_LINEAR, cfg.has_qkv_bias),
                 ("self_attn.o_proj", "attn", "out", TORCH_LINEAR_2, cfg.use_bias),
                 ("mlp.gate_proj", "mlp", "gate", TORCH_LINEAR, cfg.use_bias),
                 ("mlp.up_proj", "mlp", "up", TORCH_LINEAR, cfg.use_bias),
                 ("mlp.down_proj", "mlp", "fc_out", TORCH_LINEAR, cfg.use_bias))
        for theirs, module, ours, layout, bias in dense:
            table.append(e(f"{p}{theirs}.weight", (b, module, ours, "kernel"), layout))
            if bias:
                table.append(e(f"{p}{theirs}.bias", (b, module, ours, "bias"), FLAT))
        if cfg.qk_norm:
            table += [e(p + "self_attn.q_norm.weight", (b, "attn", "query_norm", "scale")),
                      e(p + "self_attn.k_norm.weight", (b, "attn", "key_norm", "scale"))]
    return table


def name_table(cfg: ModelConfig) -> list[Entry]:
    """Every HF tensor of `cfg`'s architecture, with the leaves of ours it holds."""
    table = _gpt2_table(cfg) if weight_layout(cfg) == "gpt2" else _llama_table(cfg)
    if not cfg.tie_embeddings:
        table.append(Entry("lm_head.weight", (("lm_head", "kernel"),), TORCH_LINEAR,
                           top_level=True))
    return table


def base_prefix(cfg: ModelConfig) -> str:
    """The prefix whole-model checkpoints put before base-model tensor names."""
    return "transformer." if weight_layout(cfg) == "gpt2" else "model."


def _read_block(tensor, axes: Sequence[np.ndarray]) -> np.ndarray:
    """tensor[np.ix_(*axes)], touching only the bounding box (a memory-mapped tensor then
    reads just that range from disk: a contiguous one for the usual leading-axis shards)."""
    box = tuple(slice(int(a.min()), int(a.max()) + 1) if a.size else slice(0, 0) for a in axes)
    block = np.asarray(tensor[box])
    if all(a.size == s.stop - s.start and np.all(np.diff(a) == 1) for a, s in zip(axes, box)):
        return block  # already exactly the block asked for: no gather copy
    return block[np.ix_(*(a - s.start for a, s in zip(axes, box)))]


def read_leaf(tensor, layout: Layout, shape: Sequence[int], offset: int = 0,
              index: tuple[slice, ...] | None = None) -> np.ndarray:
    """Block `index` (default: all) of our leaf of `shape`, stored in HF `tensor` from `offset`
    on along the tensor's last axis (fused q/k/v), as fp32."""
    index = index or (slice(None),) * len(shape)
    ranges = [np.arange(n)[s] for n, s in zip(shape, index)]
    block_shape = tuple(r.size for r in ranges)
    if layout.kind == "same":
        axes = ranges[:-1] + [ranges[-1] + offset] if ranges else []
        return _read_block(tensor, axes).astype(np.float32).reshape(block_shape)
    if layout.kind == "flat":
        flat = np.arange(math.prod(shape)).reshape(shape)[np.ix_(*ranges)].ravel()
        return _read_block(tensor, [flat + offset]).astype(np.float32).reshape(block_shape)
    n = layout.n_in
    ins = np.arange(math.prod(shape[:n])).reshape(shape[:n])[np.ix_(*ranges[:n])].ravel()
    outs = np.arange(math.prod(shape[n:])).reshape(shape[n:])[np.ix_(*ranges[n:])].ravel()
    if layout.transpose:
        block = _read_block(tensor, [outs, ins + offset]).T
    else:
        block = _read_block(tensor, [ins, outs + offset])
    return block.astype(np.float32).reshape(block_shape)
