"""Load a model for inference: from a run directory (newest checkpoint) or a HF folder."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
from flax import linen as nn

from llm_jax.data.errors import DataError
from llm_jax.data.hf_tokenizer import HF_TOKENIZER_FILE, HFTokenizer
from llm_jax.data.tokenizer import TOKENIZER_FILE, Tokenizer
from llm_jax.models.config import ModelConfig
from llm_jax.models.hf_io import load_hf_checkpoint
from llm_jax.models.transformer import Transformer
from llm_jax.train.checkpoint import restore_params


def load_run(run_dir: str | Path, step: int | None = None
             ) -> tuple[Transformer, dict, Tokenizer, int]:
    """(model, params, tokenizer, step) from a training run directory."""
    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    if not config_path.exists():
        raise DataError(f"{run_dir}: not a run directory (no config.json)")
    cfg = ModelConfig(**json.loads(config_path.read_text())["model"])
    model = Transformer(cfg)
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    abstract = jax.eval_shape(lambda: nn.meta.unbox(
        model.init(jax.random.PRNGKey(0), jnp.zeros((1, 8), jnp.int32))["params"]))
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device),
                            abstract)
    params, step = restore_params(run_dir / "checkpoints", abstract, step)
    return model, params, Tokenizer.load(run_dir / TOKENIZER_FILE), step


def load_hf(folder: str | Path, tokenizer_path: str | Path | None = None
            ) -> tuple[Transformer, dict, Tokenizer | HFTokenizer]:
    """(model, params, tokenizer) from a Hugging Face folder.

    The tokenizer is `tokenizer_path` (a sentencepiece .model) when given, else the folder's
    own `tokenizer.json` (a Hub checkpoint), else our `tokenizer.model` (written by
    `llm-jax export`).
    """
    folder = Path(folder)
    cfg, params = load_hf_checkpoint(folder)
    if tokenizer_path:
        tokenizer = Tokenizer.load(tokenizer_path)
    elif (folder / HF_TOKENIZER_FILE).is_file():
        tokenizer = HFTokenizer(folder)
    elif (folder / TOKENIZER_FILE).is_file():
        tokenizer = Tokenizer.load(folder / TOKENIZER_FILE)
    else:
        raise DataError(f"{folder}: no tokenizer ({HF_TOKENIZER_FILE} or {TOKENIZER_FILE}); "
                        "give one with --tokenizer")
    if tokenizer.vocab_size > cfg.vocab_size:
        raise DataError(f"{folder}: the tokenizer has {tokenizer.vocab_size} tokens but the "
                        f"model only {cfg.vocab_size}")
    return Transformer(cfg), jax.tree.map(jnp.asarray, params), tokenizer
