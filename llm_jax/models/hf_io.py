"""Hugging Face interop: import GPT-2 / Llama checkpoints into our params and export ours back.

Only `config.json` and safetensors are read or written (sharded checkpoints through their
`model.safetensors.index.json` too): nothing is ever unpickled. A checkpoint that holds only
`pytorch_model.bin` is refused with a clear error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from llm_jax.models.config import ModelConfig

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"


class HFFormatError(ValueError):
    """A checkpoint this project cannot read or a model it cannot express in HF terms."""


# ----------------------------------------------------------------------------- config mapping


def _rope_theta(hf: Mapping) -> float:
    params = hf.get("rope_parameters") or {}
    scaling = hf.get("rope_scaling") or {}
    for kind in (params.get("rope_type"), scaling.get("rope_type"), scaling.get("type")):
        if kind not in (None, "default"):
            raise HFFormatError(f"RoPE scaling {kind!r} is not supported")
    return float(params.get("rope_theta", hf.get("rope_theta", 10000.0)))


def config_from_hf(hf: Mapping, dtype: str = "float32") -> ModelConfig:
    kind = hf.get("model_type")
    if kind == "gpt2":
        for flag in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"):
            if hf.get(flag):
                raise HFFormatError(f"GPT-2 option {flag}=true is not supported")
        if hf.get("activation_function", "gelu_new") not in ("gelu_new", "gelu_pytorch_tanh"):
            raise HFFormatError(f"GPT-2 activation {hf['activation_function']!r} is not supported")
        return ModelConfig(
            vocab_size=hf["vocab_size"], d_model=hf["n_embd"], n_layers=hf["n_layer"],
            n_heads=hf["n_head"], d_ff=hf.get("n_inner") or 4 * hf["n_embd"],
            max_seq_len=hf["n_positions"], norm="layernorm",
            norm_eps=hf.get("layer_norm_epsilon", 1e-5), pos="learned", mlp="gelu",
            use_bias=True, tie_embeddings=hf.get("tie_word_embeddings", True), dtype=dtype)
    if kind in ("llama", "mistral"):
        if hf.get("attention_bias") or hf.get("mlp_bias"):
            raise HFFormatError("Llama checkpoints with attention/MLP biases are not supported")
        if hf.get("hidden_act", "silu") != "silu":
            raise HFFormatError(f"Llama activation {hf['hidden_act']!r} is not supported")
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
            rope_theta=_rope_theta(hf), mlp="swiglu", use_bias=False,
            tie_embeddings=hf.get("tie_word_embeddings", False), dtype=dtype)
    raise HFFormatError(f"model_type {kind!r} is not supported (gpt2, llama)")


def _flavour(cfg: ModelConfig) -> str:
    if (cfg.norm, cfg.pos, cfg.mlp, cfg.use_bias) == ("layernorm", "learned", "gelu", True):
        if cfg.kv_heads != cfg.n_heads or cfg.head_size * cfg.n_heads != cfg.d_model:
            raise HFFormatError("GPT-2 layout needs n_kv_heads == n_heads and "
                                "head_dim * n_heads == d_model")
        return "gpt2"
    if (cfg.norm, cfg.pos, cfg.mlp, cfg.use_bias) == ("rmsnorm", "rope", "swiglu", False):
        return "llama"
    raise HFFormatError(f"no Hugging Face architecture matches norm={cfg.norm}, pos={cfg.pos}, "
                        f"mlp={cfg.mlp}, use_bias={cfg.use_bias}")


def config_to_hf(cfg: ModelConfig) -> dict:
    if _flavour(cfg) == "gpt2":
        return {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
                "vocab_size": cfg.vocab_size, "n_embd": cfg.d_model, "n_layer": cfg.n_layers,
                "n_head": cfg.n_heads, "n_inner": cfg.ff_size, "n_positions": cfg.max_seq_len,
                "n_ctx": cfg.max_seq_len, "layer_norm_epsilon": cfg.norm_eps,
                "activation_function": "gelu_new", "resid_pdrop": 0.0, "embd_pdrop": 0.0,
                "attn_pdrop": 0.0, "tie_word_embeddings": cfg.tie_embeddings,
                "torch_dtype": "float32"}
    return {"architectures": ["LlamaForCausalLM"], "model_type": "llama",
            "vocab_size": cfg.vocab_size, "hidden_size": cfg.d_model,
            "intermediate_size": cfg.ff_size, "num_hidden_layers": cfg.n_layers,
            "num_attention_heads": cfg.n_heads, "num_key_value_heads": cfg.kv_heads,
            "head_dim": cfg.head_size, "max_position_embeddings": cfg.max_seq_len,
            "rms_norm_eps": cfg.norm_eps, "rope_theta": cfg.rope_theta,
            "rope_parameters": {"rope_type": "default", "rope_theta": cfg.rope_theta},
            "hidden_act": "silu", "attention_bias": False, "mlp_bias": False,
            "tie_word_embeddings": cfg.tie_embeddings, "torch_dtype": "float32"}


# ----------------------------------------------------------------------------- weight mapping


def _get(tensors: Mapping[str, np.ndarray], *names: str) -> np.ndarray:
    for name in names:
        if name in tensors:
            return np.asarray(tensors[name], np.float32)
    raise HFFormatError(f"checkpoint has no tensor {names[0]!r}")


def params_from_hf_state(cfg: ModelConfig, tensors: Mapping[str, np.ndarray]) -> dict:
    """Our param tree from a Hugging Face state dict (numpy arrays, any float dtype)."""
    d, h, kv, hd = cfg.d_model, cfg.n_heads, cfg.kv_heads, cfg.head_size
    if _flavour(cfg) == "gpt2":
        t = lambda name: _get(tensors, f"transformer.{name}", name)  # noqa: E731
        params = {"embed": {"embedding": t("wte.weight")},
                  "pos_embed": {"embedding": t("wpe.weight")},
                  "final_norm": {"scale": t("ln_f.weight"), "bias": t("ln_f.bias")}}
        for i in range(cfg.n_layers):
            p = f"h.{i}."
            qkv_w, qkv_b = t(p + "attn.c_attn.weight"), t(p + "attn.c_attn.bias")
            q_w, k_w, v_w = np.split(qkv_w, 3, axis=1)
            q_b, k_b, v_b = np.split(qkv_b, 3)
            params[f"block_{i}"] = {
                "attn_norm": {"scale": t(p + "ln_1.weight"), "bias": t(p + "ln_1.bias")},
                "mlp_norm": {"scale": t(p + "ln_2.weight"), "bias": t(p + "ln_2.bias")},
                "attn": {
                    "query": {"kernel": q_w.reshape(d, h, hd), "bias": q_b.reshape(h, hd)},
                    "key": {"kernel": k_w.reshape(d, h, hd), "bias": k_b.reshape(h, hd)},
                    "value": {"kernel": v_w.reshape(d, h, hd), "bias": v_b.reshape(h, hd)},
                    "out": {"kernel": t(p + "attn.c_proj.weight").reshape(h, hd, d),
                            "bias": t(p + "attn.c_proj.bias")}},
                "mlp": {"fc_in": {"kernel": t(p + "mlp.c_fc.weight"),
                                  "bias": t(p + "mlp.c_fc.bias")},
                        "fc_out": {"kernel": t(p + "mlp.c_proj.weight"),
                                   "bias": t(p + "mlp.c_proj.bias")}}}
        if not cfg.tie_embeddings:
            params["lm_head"] = {"kernel": _get(tensors, "lm_head.weight").T}
        return params

    t = lambda name: _get(tensors, f"model.{name}", name)  # noqa: E731
    params = {"embed": {"embedding": t("embed_tokens.weight")},
              "final_norm": {"scale": t("norm.weight")}}
    for i in range(cfg.n_layers):
        p = f"layers.{i}."
        params[f"block_{i}"] = {
            "attn_norm": {"scale": t(p + "input_layernorm.weight")},
            "mlp_norm": {"scale": t(p + "post_attention_layernorm.weight")},
            "attn": {
                "query": {"kernel": t(p + "self_attn.q_proj.weight").T.reshape(d, h, hd)},
                "key": {"kernel": t(p + "self_attn.k_proj.weight").T.reshape(d, kv, hd)},
                "value": {"kernel": t(p + "self_attn.v_proj.weight").T.reshape(d, kv, hd)},
                "out": {"kernel": t(p + "self_attn.o_proj.weight").T.reshape(h, hd, d)}},
            "mlp": {"gate": {"kernel": t(p + "mlp.gate_proj.weight").T},
                    "up": {"kernel": t(p + "mlp.up_proj.weight").T},
                    "fc_out": {"kernel": t(p + "mlp.down_proj.weight").T}}}
    if not cfg.tie_embeddings:
        params["lm_head"] = {"kernel": _get(tensors, "lm_head.weight").T}
    return params


def hf_state_from_params(cfg: ModelConfig, params) -> dict[str, np.ndarray]:
    """The Hugging Face state dict (numpy, contiguous) for our params."""
    d, h, kv, hd = cfg.d_model, cfg.n_heads, cfg.kv_heads, cfg.head_size
    a = lambda x: np.ascontiguousarray(np.asarray(x, np.float32))  # noqa: E731
    out = {}
    if _flavour(cfg) == "gpt2":
        out["transformer.wte.weight"] = a(params["embed"]["embedding"])
        out["transformer.wpe.weight"] = a(params["pos_embed"]["embedding"])
        out["transformer.ln_f.weight"] = a(params["final_norm"]["scale"])
        out["transformer.ln_f.bias"] = a(params["final_norm"]["bias"])
        for i in range(cfg.n_layers):
            b, p = params[f"block_{i}"], f"transformer.h.{i}."
            att = b["attn"]
            out[p + "ln_1.weight"], out[p + "ln_1.bias"] = (a(b["attn_norm"]["scale"]),
                                                            a(b["attn_norm"]["bias"]))
            out[p + "ln_2.weight"], out[p + "ln_2.bias"] = (a(b["mlp_norm"]["scale"]),
                                                            a(b["mlp_norm"]["bias"]))
            out[p + "attn.c_attn.weight"] = a(np.concatenate(
                [np.asarray(att[n]["kernel"]).reshape(d, d) for n in ("query", "key", "value")],
                axis=1))
            out[p + "attn.c_attn.bias"] = a(np.concatenate(
                [np.asarray(att[n]["bias"]).reshape(d) for n in ("query", "key", "value")]))
            out[p + "attn.c_proj.weight"] = a(np.asarray(att["out"]["kernel"]).reshape(d, d))
            out[p + "attn.c_proj.bias"] = a(att["out"]["bias"])
            out[p + "mlp.c_fc.weight"] = a(b["mlp"]["fc_in"]["kernel"])
            out[p + "mlp.c_fc.bias"] = a(b["mlp"]["fc_in"]["bias"])
            out[p + "mlp.c_proj.weight"] = a(b["mlp"]["fc_out"]["kernel"])
            out[p + "mlp.c_proj.bias"] = a(b["mlp"]["fc_out"]["bias"])
    else:
        out["model.embed_tokens.weight"] = a(params["embed"]["embedding"])
        out["model.norm.weight"] = a(params["final_norm"]["scale"])
        for i in range(cfg.n_layers):
            b, p = params[f"block_{i}"], f"model.layers.{i}."
            att, mlp = b["attn"], b["mlp"]
            out[p + "input_layernorm.weight"] = a(b["attn_norm"]["scale"])
            out[p + "post_attention_layernorm.weight"] = a(b["mlp_norm"]["scale"])
            out[p + "self_attn.q_proj.weight"] = a(np.asarray(att["query"]["kernel"])
                                                   .reshape(d, h * hd).T)
            out[p + "self_attn.k_proj.weight"] = a(np.asarray(att["key"]["kernel"])
                                                   .reshape(d, kv * hd).T)
            out[p + "self_attn.v_proj.weight"] = a(np.asarray(att["value"]["kernel"])
                                                   .reshape(d, kv * hd).T)
            out[p + "self_attn.o_proj.weight"] = a(np.asarray(att["out"]["kernel"])
                                                   .reshape(h * hd, d).T)
            out[p + "mlp.gate_proj.weight"] = a(np.asarray(mlp["gate"]["kernel"]).T)
            out[p + "mlp.up_proj.weight"] = a(np.asarray(mlp["up"]["kernel"]).T)
            out[p + "mlp.down_proj.weight"] = a(np.asarray(mlp["fc_out"]["kernel"]).T)
    if not cfg.tie_embeddings:
        out["lm_head.weight"] = a(np.asarray(params["lm_head"]["kernel"]).T)
    return out


# ----------------------------------------------------------------------------- files


def _resolve(path: str | Path) -> Path:
    """A local folder, or a hub id downloaded (safetensors + json only) into the HF cache."""
    local = Path(path)
    if local.is_dir():
        return local
    if local.exists() or str(path).startswith((".", "/")) or str(path).count("/") != 1:
        raise HFFormatError(f"{path}: not a checkpoint folder")
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(str(path), allow_patterns=["*.json", "*.safetensors"]))


def _read_tensors(folder: Path) -> dict[str, np.ndarray]:
    index = folder / INDEX_FILE
    if index.exists():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    elif (folder / SINGLE_FILE).exists():
        files = [SINGLE_FILE]
    else:
        pickled = [p.name for p in folder.glob("*.bin")] + [p.name for p in folder.glob("*.pt")]
        hint = (f" (found {', '.join(pickled)}: pickle files are never loaded; convert them "
                "to safetensors)") if pickled else ""
        raise HFFormatError(f"{folder}: no {SINGLE_FILE} or {INDEX_FILE}{hint}")
    tensors: dict[str, np.ndarray] = {}
    for name in files:
        tensors.update(load_file(str(folder / name)))  # bf16 arrives as ml_dtypes.bfloat16
    return tensors


def load_hf_checkpoint(path: str | Path, *, dtype: str = "float32") -> tuple[ModelConfig, dict]:
    """(ModelConfig, params) from a Hugging Face folder (or hub id) of GPT-2 or Llama weights."""
    folder = _resolve(path)
    config_path = folder / "config.json"
    if not config_path.exists():
        raise HFFormatError(f"{folder}: no config.json")
    cfg = config_from_hf(json.loads(config_path.read_text()), dtype=dtype)
    return cfg, params_from_hf_state(cfg, _read_tensors(folder))


def save_hf_checkpoint(cfg: ModelConfig, params, path: str | Path, *,
                       max_shard_bytes: int | None = None) -> None:
    """Write config.json + safetensors that `transformers.AutoModelForCausalLM` loads."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config_to_hf(cfg), indent=2) + "\n")
    tensors = hf_state_from_params(cfg, params)
    metadata = {"format": "pt"}
    if not max_shard_bytes or sum(t.nbytes for t in tensors.values()) <= max_shard_bytes:
        save_file(tensors, str(folder / SINGLE_FILE), metadata=metadata)
        return
    shards, current, size = [], {}, 0
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
    index = {"metadata": {"total_size": sum(t.nbytes for t in tensors.values())},
             "weight_map": weight_map}
    (folder / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n")
