"""Small builders shared by tests: tiny models, random packed batches, sharded states."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from llm_jax.losses.lm import make_lm_loss
from llm_jax.models.config import ModelConfig
from llm_jax.models.presets import preset
from llm_jax.models.transformer import Transformer
from llm_jax.sharding.mesh import batch_sharding, make_mesh
from llm_jax.sharding.rules import rules
from llm_jax.train.init import init_train_state
from llm_jax.train.optim import OptimConfig, make_optimizer
from llm_jax.train.step import jit_train_step, make_train_step


def tiny_config(flavour: str = "gpt2", **overrides) -> ModelConfig:
    base = preset("tiny" if flavour == "gpt2" else "tiny_llama")
    base.update(d_model=64, n_layers=2, n_heads=4, max_seq_len=64)
    if flavour == "llama":
        base.update(n_kv_heads=2, d_ff=96)
    base.update(vocab_size=128)
    base.update(overrides)
    return ModelConfig(**base)


def init_params(cfg: ModelConfig, seed: int = 0):
    model = Transformer(cfg)
    return model, nn.meta.unbox(model.init(jax.random.PRNGKey(seed),
                                           jnp.zeros((1, 8), jnp.int32))["params"])


def random_params(cfg, seed: int = 0):
    """(model, params) with numpy-drawn weights: same tree as `model.init`, but nothing to
    compile (an eager init compiles a random-number kernel per parameter shape, seconds
    on CPU). Nonzero biases and norm scales away from 1 exercise every parameter."""
    model = Transformer(cfg)
    shapes = jax.eval_shape(lambda: nn.meta.unbox(
        model.init(jax.random.PRNGKey(0), jnp.zeros((1, 8), jnp.int32))["params"]))
    rng = np.random.default_rng(seed)

    def draw(path, leaf):
        name = jax.tree_util.keystr(path)
        values = rng.standard_normal(leaf.shape) * (0.1 if "scale" in name else 0.05)
        return jnp.asarray(values + ("scale" in name), leaf.dtype)

    return model, jax.tree_util.tree_map_with_path(draw, shapes)


def random_packed_batch(batch: int, seq: int, vocab: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Rows holding 1-3 documents each, with a little padding at the end of some rows."""
    rng = np.random.default_rng(seed)
    inputs = rng.integers(4, vocab, (batch, seq)).astype(np.int32)
    targets = rng.integers(4, vocab, (batch, seq)).astype(np.int32)
    segment_ids = np.zeros((batch, seq), np.int32)
    positions = np.zeros((batch, seq), np.int32)
    for b in range(batch):
        used = seq - rng.integers(0, seq // 4)
        cuts = np.sort(rng.choice(np.arange(1, used), size=rng.integers(0, 3), replace=False))
        bounds = [0, *cuts.tolist(), used]
        for s, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
            segment_ids[b, lo:hi] = s + 1
            positions[b, lo:hi] = np.arange(hi - lo)
    return dict(inputs=inputs, targets=targets, segment_ids=segment_ids, positions=positions)


def sharded_step(cfg: ModelConfig, mesh_shape: dict, rule_name: str, *, devices=None,
                 grad_accum: int = 1, total_steps: int = 10):
    """(state, jitted step, put_batch, mesh) for a tiny LM on the given mesh."""
    model = Transformer(cfg)
    mesh = make_mesh(mesh_shape, devices=devices)
    rule_set = rules(rule_name)
    optimizer, schedule = make_optimizer(OptimConfig(lr=1e-3, warmup_steps=0), total_steps)
    with jax.set_mesh(mesh), nn.logical_axis_rules(rule_set):
        state, shardings = init_train_state(
            lambda r: model.init(r, jnp.zeros((1, 8), jnp.int32))["params"], optimizer,
            jax.random.PRNGKey(0), mesh, rule_set)
    apply = lambda p, t, pos, seg: model.apply({"params": p}, t, pos, seg)  # noqa: E731
    step = jit_train_step(make_train_step(make_lm_loss(apply), optimizer, grad_accum=grad_accum,
                                          lr_schedule=schedule), shardings, batch_sharding(mesh))
    sharding = batch_sharding(mesh)

    def put(batch):
        return {k: jax.device_put(v, sharding) for k, v in batch.items()}

    def run(state, batch):
        with jax.set_mesh(mesh), nn.logical_axis_rules(rule_set):
            return step(state, put(batch))

    return state, run, mesh


class CharTokenizer:
    """A byte-level stand-in with the `Tokenizer` interface the pipeline uses (ids 0-3 special)."""

    pad_id, unk_id, bos_id, eos_id = 0, 1, 2, 3
    vocab_size = 260

    def encode(self, text: str) -> list[int]:
        return [b + 4 for b in text.encode()]

    def decode(self, ids) -> str:
        return bytes(i - 4 for i in ids if i >= 4).decode(errors="replace")

    def token_byte_lengths(self) -> np.ndarray:
        return np.array([0] * 4 + [1] * 256, np.int32)


# Overrides that shrink any pretraining experiment to a seconds-long CPU run.
TINY_RUN_ARGS = [
    "--config.model.d_model=64", "--config.model.n_layers=2", "--config.model.n_heads=4",
    "--config.model.max_seq_len=64", "--config.data.seq_len=32", "--config.data.batch_size=8",
    "--config.data.vocab_size=384", "--config.train.eval_batches=2",
    "--config.train.sample_tokens=6", "--config.train.log_every=1",
    "--config.train.checkpoint_every=2", "--config.wandb.mode=offline",
]


def corpus_args(corpus: dict[str, str]) -> list[str]:
    return [f"--config.data.train_paths={corpus['train']}",
            f"--config.data.val_paths={corpus['val']}"]


def require(module: str):
    """Import `module` for tests that cannot run without it (torch, transformers, tokenizers).

    Under CI (a `CI` environment variable that is set and not "0"/"false") a missing module is
    an error, so parity tests can never pass by being skipped; on a workstation without the
    `[hf]` extra they skip with the same message.
    """
    import importlib
    import os

    import pytest

    try:
        return importlib.import_module(module)
    except ImportError as e:
        message = f"this test needs `{module}`: pip install -e '.[hf]' ({e})"
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false"):
            raise ImportError(message) from e
        pytest.skip(message, allow_module_level=True)


def byte_level_bpe(texts: list[str], vocab_size: int, special: tuple[str, ...]):
    """A GPT-2-style byte-level BPE (`tokenizers`) trained here; `special` get ids 0, 1, ..."""
    tokenizers = require("tokenizers")
    tok = tokenizers.Tokenizer(tokenizers.models.BPE())
    tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(special),
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    return tok


# A Hub folder's special tokens and ChatML template (Qwen2-style), for tests that save one.
CHATML_SPECIAL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
CHATML_TEMPLATE = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
                   "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
                   "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
