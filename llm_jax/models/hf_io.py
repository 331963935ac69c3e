"""Hugging Face interop: import GPT-2 / Llama checkpoints into our params and export ours back.

    cfg, params = load_hf_checkpoint("path/to/folder")        # or a hub id such as "gpt2"
    save_hf_checkpoint(cfg, params, "out/")                  # AutoModelForCausalLM loads it

Only `config.json` and safetensors are read or written (sharded checkpoints through their
`model.safetensors.index.json` too): nothing is ever unpickled. A checkpoint that holds only
`pytorch_model.bin` is refused with a clear error.

GPT-2 maps to `norm="layernorm", pos="learned", mlp="gelu", use_bias=True`; Llama (and
Mistral without sliding windows) to `norm="rmsnorm", pos="rope", mlp="swiglu"`, with
`use_bias` standing for Llama's `attention_bias` and `mlp_bias` together. Our RoPE uses the
same "rotate half" layout as these checkpoints, so q/k weights need no permutation.
"""

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
from safetensors import deserialize
from safetensors.numpy import load_file, save_file

from llm_jax.models.config import ModelConfig
from llm_jax.models.transformer import Transformer

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
PICKLE_PATTERNS = ("*.bin", "*.pt", "*.pth", "*.ckpt")

# Tensors in real checkpoints that are not weights: GPT-2's causal-mask buffers and the RoPE
# frequencies older Llama checkpoints stored. Anything else left unread is an error.
_BUFFERS = re.compile(r"(^|\.)attn\.(bias|masked_bias)$|rotary_emb\.inv_freq$")
_FLOAT_DTYPES = {np.dtype(t) for t in (np.float16, np.float32, np.float64, ml_dtypes.bfloat16)}
# The format-level dtype names of safetensors, for the fallback reader below.
_RAW_DTYPES = {"BF16": ml_dtypes.bfloat16, "F16": np.float16, "F32": np.float32,
               "F64": np.float64}


class HFFormatError(ValueError):
    """A checkpoint this project cannot read or a model it cannot express in HF terms."""


# ----------------------------------------------------------------------------- config mapping


def _rope_theta(hf: Mapping) -> float:
    # transformers 5 writes `rope_parameters`; 4.x wrote `rope_theta` + `rope_scaling`.
    params = hf.get("rope_parameters") or {}
    scaling = hf.get("rope_scaling") or {}
    for kind in (params.get("rope_type"), scaling.get("rope_type"), scaling.get("type")):
        if kind not in (None, "default"):
            raise HFFormatError(f"RoPE scaling {kind!r} is not supported")
    return float(params.get("rope_theta", hf.get("rope_theta", 10000.0)))


def _gpt2_config(hf: Mapping, dtype: str) -> ModelConfig:
    for flag in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn",
                 "add_cross_attention"):
        if hf.get(flag):
            raise HFFormatError(f"GPT-2 option {flag}=true is not supported")
    if not hf.get("scale_attn_weights", True):
        raise HFFormatError("GPT-2 option scale_attn_weights=false is not supported")
    act = hf.get("activation_function", "gelu_new")
    if act not in ("gelu_new", "gelu_pytorch_tanh"):  # both are the tanh approximation
        raise HFFormatError(f"GPT-2 activation {act!r} is not supported (gelu_new only)")
    return ModelConfig(
        vocab_size=hf["vocab_size"], d_model=hf["n_embd"], n_layers=hf["n_layer"],
        n_heads=hf["n_head"], d_ff=hf.get("n_inner") or 4 * hf["n_embd"],
        max_seq_len=hf["n_positions"], norm="layernorm",
        norm_eps=hf.get("layer_norm_epsilon", 1e-5), pos="learned", mlp="gelu",
        use_bias=True, tie_embeddings=hf.get("tie_word_embeddings", True), dtype=dtype)


def _llama_config(hf: Mapping, dtype: str) -> ModelConfig:
    attn_bias, mlp_bias = bool(hf.get("attention_bias")), bool(hf.get("mlp_bias"))
    if attn_bias != mlp_bias:  # one `use_bias` switch covers both in ModelConfig
        raise HFFormatError(f"attention_bias={attn_bias} with mlp_bias={mlp_bias} is not "
                            "supported (both or neither)")
    if hf.get("hidden_act", "silu") != "silu":
        raise HFFormatError(f"Llama activation {hf['hidden_act']!r} is not supported (silu)")
    if hf.get("sliding_window"):
        raise HFFormatError("sliding-window attention is not supported")
    heads = hf["num_attention_heads"]
    return ModelConfig(
        vocab_size=hf["vocab_size"], d_model=hf["hidden_size"],
        n_layers=hf["num_hidden_layers"], n_heads=heads,
        n_kv_heads=hf.get("num_key_value_heads") or heads,
        head_dim=hf.get("head_dim") or hf["hidden_size"] // heads,
        d_ff=hf["intermediate_size"], max_seq_len=hf.get("max_position_embeddings", 2048),
        norm="rmsnorm", norm_eps=hf.get("rms_norm_eps", 1e-6), pos="rope",
        rope_theta=_rope_theta(hf), mlp="swiglu", use_bias=attn_bias,
        tie_embeddings=hf.get("tie_word_embeddings", False), dtype=dtype)


def config_from_hf(hf: Mapping, dtype: str = "float32") -> ModelConfig:
    """Our `ModelConfig` from a Hugging Face `config.json` dict; `dtype` is the compute dtype."""
    kind = hf.get("model_type")
    if kind == "gpt2":
        return _gpt2_config(hf, dtype)
    if kind in ("llama", "mistral"):
        return _llama_config(hf, dtype)
    raise HFFormatError(f"model_type {kind!r} is not supported (gpt2, llama, mistral)")


def _flavour(cfg: ModelConfig) -> str:
    if (cfg.norm, cfg.pos, cfg.mlp, cfg.use_bias) == ("layernorm", "learned", "gelu", True):
        if cfg.kv_heads != cfg.n_heads or cfg.head_size * cfg.n_heads != cfg.d_model:
            raise HFFormatError("GPT-2 layout needs n_kv_heads == n_heads and "
                                "head_dim * n_heads == d_model")
        return "gpt2"
    if (cfg.norm, cfg.pos, cfg.mlp) == ("rmsnorm", "rope", "swiglu"):
        return "llama"
    raise HFFormatError(f"no Hugging Face architecture matches norm={cfg.norm}, pos={cfg.pos}, "
                        f"mlp={cfg.mlp}, use_bias={cfg.use_bias} (GPT-2: layernorm/learned/"
                        "gelu/bias; Llama: rmsnorm/rope/swiglu)")


def config_to_hf(cfg: ModelConfig) -> dict:
    """The `config.json` dict of the matching Hugging Face architecture."""
    # Token ids belong to our tokenizer, not the model config: null keeps transformers from
    # assuming GPT-2's 50256 or Llama's 1/2, which may not exist in our vocabulary.
    common = {"vocab_size": cfg.vocab_size, "tie_word_embeddings": cfg.tie_embeddings,
              "bos_token_id": None, "eos_token_id": None, "pad_token_id": None,
              "dtype": "float32", "torch_dtype": "float32"}  # 5.x reads dtype, 4.x torch_dtype
    if _flavour(cfg) == "gpt2":
        return {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", **common,
                "n_embd": cfg.d_model, "n_layer": cfg.n_layers, "n_head": cfg.n_heads,
                "n_inner": cfg.ff_size, "n_positions": cfg.max_seq_len,
                "n_ctx": cfg.max_seq_len, "layer_norm_epsilon": cfg.norm_eps,
                "activation_function": "gelu_new", "scale_attn_weights": True,
                "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}
    return {"architectures": ["LlamaForCausalLM"], "model_type": "llama", **common,
            "hidden_size": cfg.d_model, "intermediate_size": cfg.ff_size,
            "num_hidden_layers": cfg.n_layers, "num_attention_heads": cfg.n_heads,
            "num_key_value_heads": cfg.kv_heads, "head_dim": cfg.head_size,
            "max_position_embeddings": cfg.max_seq_len, "rms_norm_eps": cfg.norm_eps,
            "rope_theta": cfg.rope_theta,
            "rope_parameters": {"rope_type": "default", "rope_theta": cfg.rope_theta},
            "hidden_act": "silu", "attention_bias": cfg.use_bias, "mlp_bias": cfg.use_bias,
            "attention_dropout": 0.0}


# ----------------------------------------------------------------------------- weight mapping


class _Reader:
    """Reads named tensors as fp32 with shape checks, and remembers which ones it used."""

    def __init__(self, tensors: Mapping[str, np.ndarray], prefix: str):
        self.tensors, self.prefix, self.used = tensors, prefix, set()

    def __call__(self, name: str, shape: tuple[int, ...], *, top_level: bool = False):
        # Whole-model checkpoints carry a prefix ("transformer." / "model."); checkpoints of
        # the bare base model (e.g. the original "gpt2" repo) do not.
        candidates = (name,) if top_level else (self.prefix + name, name)
        for key in candidates:
            if key in self.tensors:
                value = self.tensors[key]
                if np.dtype(value.dtype) not in _FLOAT_DTYPES:
                    raise HFFormatError(f"tensor {key!r} has dtype {value.dtype}; only float "
                                        "checkpoints are supported (no quantized weights)")
                if tuple(value.shape) != tuple(shape):
                    raise HFFormatError(f"tensor {key!r} has shape {tuple(value.shape)}; this "
                                        f"config expects {tuple(shape)}")
                self.used.add(key)
                return np.asarray(value, np.float32)
        raise HFFormatError(f"checkpoint has no tensor {candidates[0]!r}")

    def check_all_used(self) -> None:
        left = sorted(k for k in self.tensors if k not in self.used and not _BUFFERS.search(k))
        if left:
            more = f" and {len(left) - 5} more" if len(left) > 5 else ""
            raise HFFormatError(f"checkpoint tensors not used by this config (wrong config, or "
                                f"an unsupported variant): {left[:5]}{more}")


def _gpt2_params(cfg: ModelConfig, t: _Reader) -> dict:
    d, h, hd, f = cfg.d_model, cfg.n_heads, cfg.head_size, cfg.ff_size
    ln = lambda name: {"scale": t(f"{name}.weight", (d,)),  # noqa: E731
                       "bias": t(f"{name}.bias", (d,))}
    params = {"embed": {"embedding": t("wte.weight", (cfg.vocab_size, d))},
              "pos_embed": {"embedding": t("wpe.weight", (cfg.max_seq_len, d))},
              "final_norm": ln("ln_f")}
    for i in range(cfg.n_layers):
        p = f"h.{i}."
        # HF GPT-2 uses Conv1D, whose weight is [in, out] (ours too), with q, k, v fused.
        q_w, k_w, v_w = np.split(t(p + "attn.c_attn.weight", (d, 3 * d)), 3, axis=1)
        q_b, k_b, v_b = np.split(t(p + "attn.c_attn.bias", (3 * d,)), 3)
        params[f"block_{i}"] = {
            "attn_norm": ln(p + "ln_1"),
            "mlp_norm": ln(p + "ln_2"),
            "attn": {
                "query": {"kernel": q_w.reshape(d, h, hd), "bias": q_b.reshape(h, hd)},
                "key": {"kernel": k_w.reshape(d, h, hd), "bias": k_b.reshape(h, hd)},
                "value": {"kernel": v_w.reshape(d, h, hd), "bias": v_b.reshape(h, hd)},
                "out": {"kernel": t(p + "attn.c_proj.weight", (d, d)).reshape(h, hd, d),
                        "bias": t(p + "attn.c_proj.bias", (d,))}},
            "mlp": {"fc_in": {"kernel": t(p + "mlp.c_fc.weight", (d, f)),
                              "bias": t(p + "mlp.c_fc.bias", (f,))},
                    "fc_out": {"kernel": t(p + "mlp.c_proj.weight", (f, d)),
                               "bias": t(p + "mlp.c_proj.bias", (d,))}}}
    return params


def _llama_params(cfg: ModelConfig, t: _Reader) -> dict:
    d, h, kv, hd, f = cfg.d_model, cfg.n_heads, cfg.kv_heads, cfg.head_size, cfg.ff_size

    def dense(name: str, n_in: int, out_shape: tuple[int, ...], in_shape=None) -> dict:
        # torch Linear stores [out, in]; ours is [in..., out...].
        n_out = int(np.prod(out_shape))
        layer = {"kernel": t(f"{name}.weight", (n_out, n_in)).T.reshape(
            *(in_shape or (n_in,)), *out_shape)}
        if cfg.use_bias:
            layer["bias"] = t(f"{name}.bias", (n_out,)).reshape(out_shape)
        return layer

    params = {"embed": {"embedding": t("embed_tokens.weight", (cfg.vocab_size, d))},
              "final_norm": {"scale": t("norm.weight", (d,))}}
    for i in range(cfg.n_layers):
        p = f"layers.{i}."
        params[f"block_{i}"] = {
            "attn_norm": {"scale": t(p + "input_layernorm.weight", (d,))},
            "mlp_norm": {"scale": t(p + "post_attention_layernorm.weight", (d,))},
            "attn": {"query": dense(p + "self_attn.q_proj", d, (h, hd)),
                     "key": dense(p + "self_attn.k_proj", d, (kv, hd)),
                     "value": dense(p + "self_attn.v_proj", d, (kv, hd)),
                     "out": dense(p + "self_attn.o_proj", h * hd, (d,), in_shape=(h, hd))},
            "mlp": {"gate": dense(p + "mlp.gate_proj", d, (f,)),
                    "up": dense(p + "mlp.up_proj", d, (f,)),
                    "fc_out": dense(p + "mlp.down_proj", f, (d,))}}
    return params


def params_from_hf_state(cfg: ModelConfig, tensors: Mapping[str, np.ndarray]) -> dict:
    """Our param tree (fp32 numpy) from a Hugging Face state dict of any float dtype.

    Every tensor must be used (apart from known non-weight buffers), so a checkpoint with
    weights this config has no place for fails loudly instead of loading a different model.
    """
    gpt2 = _flavour(cfg) == "gpt2"
    t = _Reader(tensors, "transformer." if gpt2 else "model.")
    params = _gpt2_params(cfg, t) if gpt2 else _llama_params(cfg, t)
    if cfg.tie_embeddings:
        # Some tied checkpoints also store the head; transformers ignores it and so do we.
        t.used.add("lm_head.weight")
    else:
        params["lm_head"] = {"kernel": t("lm_head.weight", (cfg.vocab_size, cfg.d_model),
                                         top_level=True).T}
    t.check_all_used()
    return params


def _param_shapes(cfg: ModelConfig) -> dict:
    model = Transformer(cfg)
    return jax.eval_shape(lambda: nn.meta.unbox(
        model.init(jax.random.PRNGKey(0), jnp.zeros((1, 1), jnp.int32))["params"]))


def _check_params(cfg: ModelConfig, params) -> None:
    want = jax.tree_util.tree_flatten_with_path(_param_shapes(cfg))[0]
    got = jax.tree_util.tree_flatten_with_path(params)[0]
    want = {jax.tree_util.keystr(k): tuple(v.shape) for k, v in want}
    got = {jax.tree_util.keystr(k): tuple(np.shape(v)) for k, v in got}
    if want != got:
        problems = [f"{k}: missing" for k in want if k not in got]
        problems += [f"{k}: unexpected" for k in got if k not in want]
        problems += [f"{k}: shape {got[k]}, config needs {want[k]}"
                     for k in want if k in got and got[k] != want[k]]
        raise HFFormatError("params do not match the config: " + "; ".join(problems[:5]))


def hf_state_from_params(cfg: ModelConfig, params) -> dict[str, np.ndarray]:
    """The Hugging Face state dict (fp32 numpy, contiguous) for our params."""
    params = nn.meta.unbox(params)
    _check_params(cfg, params)
    d, h, kv, hd = cfg.d_model, cfg.n_heads, cfg.kv_heads, cfg.head_size
    a = lambda x: np.ascontiguousarray(np.asarray(x, np.float32))  # noqa: E731
    out: dict[str, np.ndarray] = {}
    if _flavour(cfg) == "gpt2":
        pre = "transformer."
        out[pre + "wte.weight"] = a(params["embed"]["embedding"])
        out[pre + "wpe.weight"] = a(params["pos_embed"]["embedding"])
        out[pre + "ln_f.weight"] = a(params["final_norm"]["scale"])
        out[pre + "ln_f.bias"] = a(params["final_norm"]["bias"])
        for i in range(cfg.n_layers):
            b, p = params[f"block_{i}"], f"{pre}h.{i}."
            att, mlp = b["attn"], b["mlp"]
            for ours, theirs in (("attn_norm", "ln_1"), ("mlp_norm", "ln_2")):
                out[p + theirs + ".weight"] = a(b[ours]["scale"])
                out[p + theirs + ".bias"] = a(b[ours]["bias"])
            qkv = ("query", "key", "value")
            out[p + "attn.c_attn.weight"] = a(np.concatenate(
                [np.asarray(att[n]["kernel"]).reshape(d, d) for n in qkv], axis=1))
            out[p + "attn.c_attn.bias"] = a(np.concatenate(
                [np.asarray(att[n]["bias"]).reshape(d) for n in qkv]))
            out[p + "attn.c_proj.weight"] = a(np.asarray(att["out"]["kernel"]).reshape(d, d))
            out[p + "attn.c_proj.bias"] = a(att["out"]["bias"])
            out[p + "mlp.c_fc.weight"] = a(mlp["fc_in"]["kernel"])
            out[p + "mlp.c_fc.bias"] = a(mlp["fc_in"]["bias"])
            out[p + "mlp.c_proj.weight"] = a(mlp["fc_out"]["kernel"])
            out[p + "mlp.c_proj.bias"] = a(mlp["fc_out"]["bias"])
    else:
        out["model.embed_tokens.weight"] = a(params["embed"]["embedding"])
        out["model.norm.weight"] = a(params["final_norm"]["scale"])
        for i in range(cfg.n_layers):
            b, p = params[f"block_{i}"], f"model.layers.{i}."
            out[p + "input_layernorm.weight"] = a(b["attn_norm"]["scale"])
            out[p + "post_attention_layernorm.weight"] = a(b["mlp_norm"]["scale"])
            layers = (("self_attn.q_proj", b["attn"]["query"], d, h * hd),
                      ("self_attn.k_proj", b["attn"]["key"], d, kv * hd),
                      ("self_attn.v_proj", b["attn"]["value"], d, kv * hd),
                      ("self_attn.o_proj", b["attn"]["out"], h * hd, d),
                      ("mlp.gate_proj", b["mlp"]["gate"], d, cfg.ff_size),
                      ("mlp.up_proj", b["mlp"]["up"], d, cfg.ff_size),
                      ("mlp.down_proj", b["mlp"]["fc_out"], cfg.ff_size, d))
            for name, layer, n_in, n_out in layers:
                out[f"{p}{name}.weight"] = a(np.asarray(layer["kernel"]).reshape(n_in, n_out).T)
                if cfg.use_bias:
                    out[f"{p}{name}.bias"] = a(np.asarray(layer["bias"]).reshape(n_out))
    if not cfg.tie_embeddings:
        out["lm_head.weight"] = a(np.asarray(params["lm_head"]["kernel"]).T)
    return out


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


def _load_safetensors(file: Path) -> dict[str, np.ndarray]:
    try:
        return load_file(str(file))  # memory-mapped; bf16 arrives as ml_dtypes.bfloat16
    except TypeError:
        # safetensors < 0.8 cannot hand bfloat16 to numpy ("data type 'bfloat16' not
        # understood"); its format-level reader can, and ml_dtypes supplies the dtype.
        tensors = {}
        for name, view in deserialize(file.read_bytes()):
            if view["dtype"] not in _RAW_DTYPES:
                raise HFFormatError(f"{file.name}: tensor {name!r} has dtype {view['dtype']}; "
                                    "only float checkpoints are supported") from None
            tensors[name] = np.frombuffer(view["data"], _RAW_DTYPES[view["dtype"]]).reshape(
                view["shape"])
        return tensors


def _read_tensors(folder: Path) -> dict[str, np.ndarray]:
    # The single file wins over an index when both exist, as in transformers' own loader.
    index = folder / INDEX_FILE
    if (folder / SINGLE_FILE).exists():
        files = [SINGLE_FILE]
    elif index.exists():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    else:
        pickled = sorted(p.name for pattern in PICKLE_PATTERNS for p in folder.glob(pattern))
        hint = (f" (found {', '.join(pickled)}: pickle files are never loaded, only "
                "safetensors are read; convert them to safetensors)") if pickled else ""
        raise HFFormatError(f"{folder}: no {SINGLE_FILE} or {INDEX_FILE}{hint}")
    tensors: dict[str, np.ndarray] = {}
    for name in files:
        if not (folder / name).exists():
            raise HFFormatError(f"{folder}: {INDEX_FILE} lists {name}, which is missing")
        tensors.update(_load_safetensors(folder / name))
    return tensors


def load_hf_checkpoint(path: str | Path, *, dtype: str = "float32") -> tuple[ModelConfig, dict]:
    """(ModelConfig, params) from a Hugging Face folder (or hub id) of GPT-2 or Llama weights.

    Params come back as fp32 numpy arrays whatever the checkpoint's dtype; `dtype` sets the
    config's compute dtype.
    """
    folder = _resolve(path)
    config_path = folder / "config.json"
    if not config_path.exists():
        raise HFFormatError(f"{folder}: no config.json")
    cfg = config_from_hf(json.loads(config_path.read_text()), dtype=dtype)
    return cfg, params_from_hf_state(cfg, _read_tensors(folder))


def save_hf_checkpoint(cfg: ModelConfig, params, path: str | Path, *,
                       max_shard_bytes: int | None = None) -> None:
    """Write config.json + safetensors (fp32) that `transformers.AutoModelForCausalLM` loads.

    With `max_shard_bytes`, tensors are split over `model-0000i-of-0000n.safetensors` files
    plus `model.safetensors.index.json`, the layout `from_pretrained` reads for big models;
    a tensor larger than the limit gets a shard of its own.
    """
    tensors = hf_state_from_params(cfg, params)  # validates before anything is written
    hf_config = config_to_hf(cfg)
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    # Weights of an earlier export would shadow these (transformers reads model.safetensors
    # before an index), so the files this function writes are replaced as a set.
    for old in [folder / SINGLE_FILE, folder / INDEX_FILE,
                *folder.glob("model-*-of-*.safetensors")]:
        old.unlink(missing_ok=True)
    (folder / "config.json").write_text(json.dumps(hf_config, indent=2) + "\n")
    metadata = {"format": "pt"}  # transformers expects this key in safetensors headers
    total = sum(t.nbytes for t in tensors.values())
    if not max_shard_bytes or total <= max_shard_bytes:
        save_file(tensors, str(folder / SINGLE_FILE), metadata=metadata)
        return
    shards: list[dict[str, np.ndarray]] = []
    current: dict[str, np.ndarray] = {}
    size = 0
    for name, tensor in tensors.items():
        if current and size + tensor.nbytes > max_shard_bytes:
            shards.append(current)
            current, size = {}, 0
        current[name] = tensor
        size += tensor.nbytes
    shards.append(current)
    weight_map = {}
    for i, shard in enumerate(shards, start=1):
        name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(folder / name), metadata=metadata)
        weight_map.update(dict.fromkeys(shard, name))
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n")
