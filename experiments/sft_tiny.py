"""Chat fine-tuning of the `pretrain_tiny` model on the built-in SFT mixture, on a laptop CPU.

    llm-jax train experiments/pretrain_tiny.py && llm-jax train experiments/sft_tiny.py
    llm-jax train experiments/sft_tiny.py:answer_first   # the answer before the reasoning
    llm-jax train experiments/sft_tiny.py --config.sft.answer_first=0.5    # half and half
    llm-jax train experiments/sft_tiny.py --config.sft.math_calculator=0.2 # a fifth by calculator
    llm-jax train experiments/sft_tiny.py --config.sft.math_answer_only=0.5 # half answer alone
    llm-jax chat runs/sft_tiny/default

The mixture (identity, refusals, step-by-step arithmetic ending `#### N`, calculator calls,
grounded passage tasks) is generated offline from the seed; conversations come from files
instead with --config.data.train_paths='("chats.jsonl",)'. Start from a Hub model with
--config.init.from_run='' --config.init.from_hf=FOLDER (its own chat template is used).
"""

from configs import base, evals, sft
from llm_jax.config import choose


def get_config(arg=None):
    answer_first = choose(arg, {"default": 0.0, "answer_first": 1.0}, "sft_tiny variant")
    config = base.base_config()
    config.stage = "sft"
    config.evals = evals.sft()
    config.init.from_run = "runs/pretrain_tiny/default"
    config.data = base.data(seq_len=256, batch_size=8)
    config.model = sft.compute_only_model()
    # 8,000 conversations, 80% of them arithmetic (levels 1-2, worked in columns): the
    # skill GRPO then sharpens needs thousands of examples at this size.
    config.sft = sft.sft(answer_first=answer_first, mixture_size=8000)
    config.sft.weights.arithmetic = 2.8
    config.optim.lr = 1e-3
    config.optim.warmup_steps = 20
    config.optim.min_lr_ratio = 0.1
    config.optim.weight_decay = 0.0
    config.train.steps = 400
    config.train.log_every = 10
    config.train.eval_every = 200
    config.train.eval_at_start = True  # the base model's numbers, for before/after
    config.train.eval_batches = 4
    config.train.sample_every = 0
    config.train.checkpoint_every = 100
    config.wandb.project = "llm-jax-sft"
    return config


def sweep(add, arg=None):
    for lr in (5e-4, 1e-3, 2e-3):
        add(**{"optim.lr": lr})
