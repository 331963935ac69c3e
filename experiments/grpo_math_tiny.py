"""GRPO on arithmetic from the `sft_tiny` model, on a laptop CPU.

    llm-jax train experiments/sft_tiny.py && llm-jax train experiments/grpo_math_tiny.py
    llm-jax train experiments/grpo_math_tiny.py:dr_grpo     # mean-only advantages, constant norm
    llm-jax train experiments/grpo_math_tiny.py:rloo
    llm-jax sweep experiments/grpo_math_tiny.py             # β × G × lr

Each iteration samples G completions for each of 8 training problems (levels 1-2 of our
generator, calculator calls answered) and takes one update on the group-relative advantages.
Held-out accuracy (greedy, and pass@k over 8 samples) is measured on problems of the held-out
split before the first iteration and every `eval_every` iterations.
"""

from configs import base, rl, sft
from llm_jax.config import choose


def get_config(arg=None):
    variant = choose(arg, {"default": {}, "dr_grpo": dict(advantage="dr_grpo",
                                                          aggregation="dr_grpo"),
                           "rloo": dict(advantage="rloo")}, "grpo_math_tiny variant")
    config = base.base_config()
    config.stage = "rl"
    config.init.from_run = "runs/sft_tiny/default"
    config.model = sft.compute_only_model()
    config.rl = rl.grpo(prompts_per_iteration=8, group_size=8, max_new_tokens=48,
                        **variant)
    config.rl.task.eval_problems = 100
    config.optim.lr = 2e-5
    config.optim.warmup_steps = 0
    config.optim.min_lr_ratio = 1.0
    config.optim.weight_decay = 0.0
    config.optim.schedule = "constant"
    config.train.steps = 40
    config.train.log_every = 1
    config.train.eval_every = 20
    config.train.eval_at_start = True
    config.train.sample_every = 10
    config.train.checkpoint_every = 10
    config.wandb.project = "llm-jax-rl"
    return config


def sweep(add, arg=None):
    for kl_coef in (0.0, 0.04):
        for group_size in (4, 8):
            for lr in (1e-5, 3e-5):
                add(**{"rl.kl_coef": kl_coef, "rl.group_size": group_size, "optim.lr": lr})
