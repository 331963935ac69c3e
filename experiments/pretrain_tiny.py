"""A ~4M-parameter model pretrained on Jane Austen + the King James Bible, on a laptop CPU.

    llm-jax train experiments/pretrain_tiny.py            # GPT-2 flavour, ~4 minutes on 2 cores
    llm-jax train experiments/pretrain_tiny.py:llama   # Llama flavour: RMSNorm, RoPE, SwiGLU, GQA

With no data given it fetches the default corpus (Debian packages r-cran-janeaustenr and
bible-kjv-text); pass your own with --config.data.train_paths='("/data/*.txt",)'.
"""

from configs import base, models
from llm_jax.config import choose


def get_config(arg=None):
    flavour = choose(arg, {"gpt2": "tiny", "llama": "tiny_llama"}, "pretrain_tiny flavour")
    config = base.base_config()
    config.data = base.data(seq_len=256, batch_size=8, vocab_size=4096)
    config.model = models.model(flavour, vocab_size=4096)
    # One vocabulary size: overriding data.vocab_size re-sizes the model too.
    config.model.vocab_size = config.data.get_ref("vocab_size")
    config.optim.lr = 2e-3
    config.optim.warmup_steps = 30
    config.optim.min_lr_ratio = 0.05
    config.train.steps = 400
    config.train.log_every = 10
    config.train.eval_every = 200
    config.train.eval_batches = 8
    config.train.sample_every = 200
    config.train.checkpoint_every = 200
    config.wandb.project = "llm-jax-pretrain"
    return config


def sweep(add, arg=None):
    """`llm-jax sweep experiments/pretrain_tiny.py [--parallel 2]`: the learning rate, around
    the default 2e-3."""
    add.grid({"optim.lr": [1e-3, 2e-3, 4e-3]})
