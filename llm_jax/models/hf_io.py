"""Hugging Face interop: import GPT-2 / Llama / Mistral / Qwen2 / Qwen3 checkpoints and export ours.

    cfg, params = load_hf_checkpoint("path/to/folder")        # or a hub id such as "gpt2"
    save_hf_checkpoint(cfg, params, "out/")                  # AutoModelForCausalLM loads it

Only `config.json` and safetensors (sharded too) are read or written; nothing is unpickled.
Our RoPE uses the same "rotate half" layout, so q/k need no permutation."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
from flax import linen as nn

from llm_jax.models.config import ModelConfig
from llm_jax.models.hf_config import HFFormatError, config_from_hf, config_to_hf
from llm_jax.models.hf_names import Entry, base_prefix, name_table, read_leaf
from llm_jax.models.safetensors_files import map_folder, write_folder
from llm_jax.models.transformer import Transformer

__all__ = ["HFFormatError", "config_from_hf", "config_to_hf", "hf_state_from_params",
           "load_hf_checkpoint", "params_from_hf_state", "save_hf_checkpoint"]

# Tensors in real checkpoints that are not weights: GPT-2's causal-mask buffers and the RoPE
# frequencies older Llama checkpoints stored. Anything else left unread is an error.
_BUFFERS = re.compile(r"(^|\.)attn\.(bias|masked_bias)$|rotary_emb\.inv_freq$")
_FLOAT_DTYPES = {np.dtype(t) for t in (np.float16, np.float32, np.float64, ml_dtypes.bfloat16)}


def param_shapes(cfg: ModelConfig) -> dict:
    """Our param tree for `cfg` as `ShapeDtypeStruct`s (nothing computed)."""
    model = Transformer(cfg)
    return jax.eval_shape(lambda: nn.meta.unbox(
        model.init(jax.random.PRNGKey(0), jnp.zeros((1, 1), jnp.int32))["params"]))


def _leaf(tree, path: tuple[str, ...]):
    for key in path:
        tree = tree[key]
    return tree


def _nest(flat: Mapping[tuple[str, ...], object]) -> dict:
    tree: dict = {}
    for path, value in flat.items():
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return tree


# ----------------------------------------------------------------------------- import


def _plan(cfg: ModelConfig, tensors: Mapping[str, np.ndarray]) -> dict:
    """{our path: (HF tensor, layout, offset, shape)} with every name, shape and dtype checked
    and every checkpoint tensor accounted for, before anything is read."""
    shapes = param_shapes(cfg)
    prefix, used, plan = base_prefix(cfg), set(), {}
    for entry in name_table(cfg):
        # Whole-model checkpoints carry a prefix ("transformer." / "model."); checkpoints of
        # the bare base model (e.g. the original "gpt2" repo) do not.
        names = (entry.hf_name,) if entry.top_level else (prefix + entry.hf_name, entry.hf_name)
        key = next((n for n in names if n in tensors), None)
        if key is None:
            raise HFFormatError(f"checkpoint has no tensor {names[0]!r}")
        tensor = tensors[key]
        if np.dtype(tensor.dtype) not in _FLOAT_DTYPES:
            raise HFFormatError(f"tensor {key!r} has dtype {tensor.dtype}; only float "
                                "checkpoints are supported (no quantized weights)")
        leaf_shapes = [tuple(_leaf(shapes, path).shape) for path in entry.ours]
        widths = [entry.layout.hf_shape(s)[-1] for s in leaf_shapes]
        expected = entry.layout.hf_shape(leaf_shapes[0])[:-1] + (sum(widths),)
        if tuple(tensor.shape) != expected:
            raise HFFormatError(f"tensor {key!r} has shape {tuple(tensor.shape)}; this config "
                                f"expects {expected}")
        offsets = np.cumsum([0, *widths[:-1]])
        for path, shape, offset in zip(entry.ours, leaf_shapes, offsets):
            plan[path] = (tensor, entry.layout, int(offset), shape)
        used.add(key)
    if cfg.tie_embeddings:
        # Some tied checkpoints also store the head; transformers ignores it and so do we.
        used.add("lm_head.weight")
    left = sorted(k for k in tensors if k not in used and not _BUFFERS.search(k))
    if left:
        more = f" and {len(left) - 5} more" if len(left) > 5 else ""
        raise HFFormatError(f"checkpoint tensors not used by this config (wrong config, or an "
                            f"unsupported variant): {left[:5]}{more}")
    return plan


def params_from_hf_state(cfg: ModelConfig, tensors: Mapping[str, np.ndarray]) -> dict:
    """Our param tree (fp32 numpy) from a HF state dict; an unused weight is an error."""
    plan = _plan(cfg, tensors)
    return _nest({path: read_leaf(t, layout, shape, offset)
                  for path, (t, layout, offset, shape) in plan.items()})


def _sharded_params(cfg: ModelConfig, tensors: Mapping[str, np.ndarray], shardings) -> dict:
    """Params placed straight onto their devices: each device's block is read from the
    (memory-mapped) tensor on its own, so no host ever holds a whole model."""
    plan = _plan(cfg, tensors)
    flat_shardings = {tuple(k.key for k in path): s for path, s in
                      jax.tree_util.tree_flatten_with_path(shardings)[0]}
    if set(flat_shardings) != set(plan):
        missing = sorted(set(plan) ^ set(flat_shardings))[:3]
        raise HFFormatError(f"shardings do not match the params tree (e.g. {missing})")

    def place(path):
        tensor, layout, offset, shape = plan[path]
        return jax.make_array_from_callback(
            shape, flat_shardings[path],
            lambda index: read_leaf(tensor, layout, shape, offset, index))

    return _nest({path: place(path) for path in plan})


# ----------------------------------------------------------------------------- export


def _check_params(cfg: ModelConfig, params) -> None:
    want = jax.tree_util.tree_flatten_with_path(param_shapes(cfg))[0]
    got = jax.tree_util.tree_flatten_with_path(params)[0]
    want = {jax.tree_util.keystr(k): tuple(v.shape) for k, v in want}
    got = {jax.tree_util.keystr(k): tuple(np.shape(v)) for k, v in got}
    if want != got:
        problems = [f"{k}: missing" for k in want if k not in got]
        problems += [f"{k}: unexpected" for k in got if k not in want]
        problems += [f"{k}: shape {got[k]}, config needs {want[k]}"
                     for k in want if k in got and got[k] != want[k]]
        raise HFFormatError("params do not match the config: " + "; ".join(problems[:5]))


def _export_tensor(entry: Entry, params) -> np.ndarray:
    parts = [entry.layout.to_hf(np.asarray(_leaf(params, path), np.float32))
             for path in entry.ours]
    return np.ascontiguousarray(np.concatenate(parts, axis=-1) if len(parts) > 1 else parts[0])


def hf_state_from_params(cfg: ModelConfig, params) -> dict[str, np.ndarray]:
    """The Hugging Face state dict (fp32 numpy, contiguous) for our params."""
    params = nn.meta.unbox(params)
    _check_params(cfg, params)
    prefix = base_prefix(cfg)
    return {(e.hf_name if e.top_level else prefix + e.hf_name): _export_tensor(e, params)
            for e in name_table(cfg)}


# ----------------------------------------------------------------------------- files


def _resolve(path: str | Path) -> Path:
    """A local folder, or a hub id downloaded (safetensors + json only) into the HF cache."""
    local = Path(path).expanduser()
    if local.is_dir():
        return local
    name = str(path)
    # Only a plain "name" or "owner/name" can be a hub id; anything path-like is a local
    # folder that is missing.
    if (local.exists() or not name or name.startswith((".", "/", "~"))
            or name.count("/") > 1 or "\\" in name):
        raise HFFormatError(f"{path}: not a checkpoint folder")
    try:
        from huggingface_hub import snapshot_download
    except ImportError as e:
        raise HFFormatError(f"{path} is not a local folder, and reading hub ids needs "
                            "huggingface_hub (pip install 'llm-jax[hf]')") from e
    try:
        return Path(snapshot_download(name, allow_patterns=["*.json", "*.safetensors"]))
    except Exception as e:  # network, auth, unknown repo: one clear message, cause chained
        raise HFFormatError(f"{path} is not a local folder, and downloading it from the "
                            f"Hugging Face Hub failed: {e}") from e


def load_hf_checkpoint(path: str | Path, *, dtype: str = "float32",
                       shardings=None) -> tuple[ModelConfig, dict]:
    """(ModelConfig, params) from a Hugging Face folder (or hub id); params fp32.

    With `shardings` (a pytree like the params), params are jax arrays on the mesh, each device
    having read only its own block."""
    folder = _resolve(path)
    config_path = folder / "config.json"
    if not config_path.exists():
        raise HFFormatError(f"{folder}: no config.json")
    cfg = config_from_hf(json.loads(config_path.read_text()), dtype=dtype)
    tensors = map_folder(folder)
    if shardings is None:
        return cfg, params_from_hf_state(cfg, tensors)
    return cfg, _sharded_params(cfg, tensors, shardings)


def save_hf_checkpoint(cfg: ModelConfig, params, path: str | Path, *,
                       max_shard_bytes: int | None = None) -> None:
    """Write config.json + fp32 safetensors (sharded with `max_shard_bytes`) for transformers."""
    tensors = hf_state_from_params(cfg, params)  # validates before anything is written
    hf_config = config_to_hf(cfg)
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(hf_config, indent=2) + "\n")
    write_folder(folder, tensors, max_shard_bytes=max_shard_bytes)
