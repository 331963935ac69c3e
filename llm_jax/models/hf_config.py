"""Hugging Face `config.json` ↔ our `ModelConfig`, for the families this project can express.

    cfg = config_from_hf(json.load(open("config.json")))     # gpt2, llama, mistral, qwen2, qwen3

GPT-2 and the Llama layout (Mistral without sliding windows, Qwen2 `qkv_bias`, Qwen3
`qk_norm`); `llama3` RoPE scaling is supported. Any other option is refused by name, so a
checkpoint never loads as a subtly different model."""

from __future__ import annotations

from collections.abc import Mapping

from llm_jax.models.config import ModelConfig
from llm_jax.nn.rope import RopeScaling

SUPPORTED_TYPES = ("gpt2", "llama", "mistral", "qwen2", "qwen3")
_LLAMA3_KEYS = ("factor", "low_freq_factor", "high_freq_factor",
                "original_max_position_embeddings")


class HFFormatError(ValueError):
    """A checkpoint this project cannot read or a model it cannot express in HF terms."""


# ----------------------------------------------------------------------------- reading


def _rope(hf: Mapping) -> tuple[float, RopeScaling | None]:
    """(theta, scaling) from either config format: transformers 5 writes `rope_parameters`;
    4.x wrote `rope_theta` + `rope_scaling` (whose kind was once called `type`)."""
    params = dict(hf.get("rope_parameters") or {})
    scaling = dict(hf.get("rope_scaling") or {})
    kinds = [k for k in (params.get("rope_type"), params.get("type"), scaling.get("rope_type"),
                         scaling.get("type")) if k not in (None, "default")]
    for kind in kinds:
        if kind != "llama3":
            raise HFFormatError(f"RoPE scaling {kind!r} is not supported (llama3 only)")
    factor = params.get("partial_rotary_factor", hf.get("partial_rotary_factor", 1.0))
    if factor != 1.0:
        raise HFFormatError(f"partial_rotary_factor={factor} is not supported (1.0 only)")
    theta = float(params.get("rope_theta", hf.get("rope_theta", 10000.0)))
    if not kinds:
        return theta, None
    values = {**scaling, **params}  # the 5.x dict wins where both are present
    values.setdefault("original_max_position_embeddings", hf.get("max_position_embeddings"))
    missing = [k for k in _LLAMA3_KEYS if values.get(k) is None]
    if missing:
        raise HFFormatError(f"llama3 RoPE scaling without {', '.join(missing)}")
    return theta, RopeScaling(
        factor=float(values["factor"]), low_freq_factor=float(values["low_freq_factor"]),
        high_freq_factor=float(values["high_freq_factor"]),
        original_max_position_embeddings=int(values["original_max_position_embeddings"]))


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


def _refuse_sliding_windows(hf: Mapping) -> None:
    # Qwen configs carry a `sliding_window` size that is inert unless use_sliding_window is
    # set; Mistral's is live whenever it is not null. layer_types names each layer's kind.
    kind = hf["model_type"]
    live = hf.get("use_sliding_window") if kind.startswith("qwen") else hf.get("sliding_window")
    sliding = [t for t in hf.get("layer_types") or () if t != "full_attention"]
    if live or sliding:
        raise HFFormatError(f"{kind}: sliding-window attention is not supported")


def _llama_family_config(hf: Mapping, dtype: str) -> ModelConfig:
    kind = hf["model_type"]
    _refuse_sliding_windows(hf)
    if hf.get("hidden_act", "silu") != "silu":
        raise HFFormatError(f"{kind} activation {hf['hidden_act']!r} is not supported (silu)")
    attn_bias, mlp_bias = bool(hf.get("attention_bias")), bool(hf.get("mlp_bias"))
    if kind == "qwen3" and attn_bias:  # Qwen3's switch adds an o_proj bias but no MLP bias
        raise HFFormatError("qwen3 attention_bias=true is not supported")
    if attn_bias != mlp_bias:  # one `use_bias` switch covers both in ModelConfig
        raise HFFormatError(f"attention_bias={attn_bias} with mlp_bias={mlp_bias} is not "
                            "supported (both or neither)")
    heads = hf["num_attention_heads"]
    default_head_dim = 128 if kind == "qwen3" else hf["hidden_size"] // heads
    theta, scaling = _rope(hf)
    return ModelConfig(
        vocab_size=hf["vocab_size"], d_model=hf["hidden_size"],
        n_layers=hf["num_hidden_layers"], n_heads=heads,
        n_kv_heads=hf.get("num_key_value_heads") or heads,
        head_dim=hf.get("head_dim") or default_head_dim,
        d_ff=hf["intermediate_size"], max_seq_len=hf.get("max_position_embeddings", 2048),
        norm="rmsnorm", norm_eps=hf.get("rms_norm_eps", 1e-6), pos="rope",
        rope_theta=theta, rope_scaling=scaling, mlp="swiglu", use_bias=attn_bias,
        qkv_bias=kind == "qwen2", qk_norm=kind == "qwen3",
        tie_embeddings=hf.get("tie_word_embeddings", False), dtype=dtype)


def config_from_hf(hf: Mapping, dtype: str = "float32") -> ModelConfig:
    """Our `ModelConfig` from a Hugging Face `config.json` dict; `dtype` is the compute dtype."""
    kind = hf.get("model_type")
    if kind == "gpt2":
        return _gpt2_config(hf, dtype)
    if kind in SUPPORTED_TYPES:
        return _llama_family_config(hf, dtype)
    raise HFFormatError(f"model_type {kind!r} is not supported ({', '.join(SUPPORTED_TYPES)})")


# ----------------------------------------------------------------------------- writing


def weight_layout(cfg: ModelConfig) -> str:
    """"gpt2" or "llama": which of the two weight layouts holds this config."""
    if (cfg.norm, cfg.pos, cfg.mlp, cfg.use_bias) == ("layernorm", "learned", "gelu", True):
        if cfg.kv_heads != cfg.n_heads or cfg.head_size * cfg.n_heads != cfg.d_model:
            raise HFFormatError("GPT-2 layout needs n_kv_heads == n_heads and "
                                "head_dim * n_heads == d_model")
        if cfg.qk_norm:
            raise HFFormatError("GPT-2 layout has no qk_norm")
        return "gpt2"
    if (cfg.norm, cfg.pos, cfg.mlp) == ("rmsnorm", "rope", "swiglu"):
        return "llama"
    raise HFFormatError(f"no Hugging Face architecture matches norm={cfg.norm}, pos={cfg.pos}, "
                        f"mlp={cfg.mlp}, use_bias={cfg.use_bias} (GPT-2: layernorm/learned/"
                        "gelu/bias; Llama: rmsnorm/rope/swiglu)")


def model_type(cfg: ModelConfig) -> str:
    """The HF model_type that expresses `cfg` exactly."""
    if weight_layout(cfg) == "gpt2":
        return "gpt2"
    if cfg.qk_norm:
        if cfg.has_qkv_bias:
            raise HFFormatError("qk_norm with biases has no Hugging Face architecture "
                                "(Qwen3 is bias-free)")
        return "qwen3"
    if cfg.qkv_bias and not cfg.use_bias:
        return "qwen2"
    return "llama"


_ARCHITECTURES = {"gpt2": "GPT2LMHeadModel", "llama": "LlamaForCausalLM",
                  "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}


def _rope_fields(cfg: ModelConfig) -> dict:
    params = {"rope_type": "default", "rope_theta": cfg.rope_theta}
    fields = {"rope_theta": cfg.rope_theta, "rope_parameters": params}
    if cfg.rope_scaling is not None:
        scaling = {"rope_type": "llama3", "factor": cfg.rope_scaling.factor,
                   "low_freq_factor": cfg.rope_scaling.low_freq_factor,
                   "high_freq_factor": cfg.rope_scaling.high_freq_factor,
                   "original_max_position_embeddings":
                       cfg.rope_scaling.original_max_position_embeddings}
        params.update(scaling)
        fields["rope_scaling"] = scaling  # what transformers 4.x reads
    return fields


def config_to_hf(cfg: ModelConfig) -> dict:
    """The `config.json` dict of the matching Hugging Face architecture."""
    kind = model_type(cfg)
    # Token ids belong to our tokenizer, not the model config: null keeps transformers from
    # assuming GPT-2's 50256 or Llama's 1/2, which may not exist in our vocabulary.
    common = {"architectures": [_ARCHITECTURES[kind]], "model_type": kind,
              "vocab_size": cfg.vocab_size, "tie_word_embeddings": cfg.tie_embeddings,
              "bos_token_id": None, "eos_token_id": None, "pad_token_id": None,
              "dtype": "float32", "torch_dtype": "float32"}  # 5.x reads dtype, 4.x torch_dtype
    if kind == "gpt2":
        return {**common, "n_embd": cfg.d_model, "n_layer": cfg.n_layers,
                "n_head": cfg.n_heads, "n_inner": cfg.ff_size, "n_positions": cfg.max_seq_len,
                "n_ctx": cfg.max_seq_len, "layer_norm_epsilon": cfg.norm_eps,
                "activation_function": "gelu_new", "scale_attn_weights": True,
                "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}
    hf = {**common, "hidden_size": cfg.d_model, "intermediate_size": cfg.ff_size,
          "num_hidden_layers": cfg.n_layers, "num_attention_heads": cfg.n_heads,
          "num_key_value_heads": cfg.kv_heads, "head_dim": cfg.head_size,
          "max_position_embeddings": cfg.max_seq_len, "rms_norm_eps": cfg.norm_eps,
          **_rope_fields(cfg), "hidden_act": "silu", "attention_dropout": 0.0}
    if kind == "llama":
        return hf | {"attention_bias": cfg.use_bias, "mlp_bias": cfg.use_bias}
    full = {"use_sliding_window": False, "sliding_window": None,
            "max_window_layers": cfg.n_layers, "layer_types": ["full_attention"] * cfg.n_layers}
    return hf | full | ({"attention_bias": False} if kind == "qwen3" else {})
