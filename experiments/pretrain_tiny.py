"""A ~5M-parameter model pretrained on Jane Austen + the King James Bible, with generated
arithmetic mixed in, on a laptop CPU.

    llm-jax train experiments/pretrain_tiny.py          # Llama flavour, ~5 minutes on 2 cores
    llm-jax train experiments/pretrain_tiny.py:gpt2     # GPT-2 flavour (LayerNorm, learned pos.)
    llm-jax train experiments/pretrain_tiny.py --config.data.generated.arithmetic=0   # prose only

With no data given it fetches the default corpus (Debian packages r-cran-janeaustenr and
bible-kjv-text); pass your own with --config.data.train_paths='("/data/*.txt",)'. 40% of the
training text is generated arithmetic worked digit by digit (`data.generated`, training-split
problems only), so the model meets digits and carries before chat fine-tuning asks for them;
the tokenizer and the validation set stay the corpus' own.
"""

from configs import base, evals, models
from llm_jax.config import choose


def get_config(arg=None):
    flavour = choose(arg, {"llama": "tiny_llama", "gpt2": "tiny"}, "pretrain_tiny flavour")
    config = base.base_config()
    config.stage = "pretrain"
    config.evals = evals.pretrain()
    config.data = base.data(seq_len=256, batch_size=8, vocab_size=4096)
    config.data.generated.arithmetic = 0.4
    config.data.generated_levels = (1, 2)  # the RL task's levels
    config.model = models.model(flavour, vocab_size=4096)
    # One vocabulary size: overriding data.vocab_size re-sizes the model too.
    config.model.vocab_size = config.data.get_ref("vocab_size")
    config.optim.lr = 2e-3
    config.optim.warmup_steps = 30
    config.optim.min_lr_ratio = 0.05
    config.train.steps = 600
    config.train.log_every = 10
    config.train.eval_every = 300
    config.train.eval_batches = 8
    config.train.sample_every = 300
    config.train.checkpoint_every = 200
    config.wandb.project = "llm-jax-pretrain"
    return config


def sweep(add, arg=None):
    """`llm-jax sweep experiments/pretrain_tiny.py [--parallel 2]`: the learning rate, around
    the default 2e-3."""
    add.grid({"optim.lr": [1e-3, 2e-3, 4e-3]})
