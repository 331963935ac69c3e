"""Rejection-sampling fine-tuning on arithmetic from the `sft_tiny` model, on a laptop CPU.

    llm-jax train experiments/sft_tiny.py && llm-jax train experiments/rft_math_tiny.py

"Generate many solutions, keep the ones that got the right answer, train on them": each
iteration samples G completions per training problem, keeps each problem's shortest correct
completion and takes an LM-loss step on those tokens only (calculator output excluded). The
same RL stage as `grpo_math_tiny.py` with `rl.algorithm=rft`; held-out accuracy is measured
the same way, before the first iteration and every `eval_every` iterations.
"""

from configs import base, evals, optim, rl, sft


def get_config(arg=None):
    config = base.base_config()
    config.stage = "rl"
    config.evals = evals.rl(max_new_tokens=152, sampled_problems=100)
    config.init.from_run = "runs/sft_tiny/default"
    config.model = sft.compute_only_model()
    config.rl = rl.rft(prompts_per_iteration=16, group_size=8, max_new_tokens=96,
                       temperature=0.8, rft_keep=1, epochs=1)
    config.rl.task.eval_problems = 400  # 200 a level, as grpo_math_tiny
    config.rl.task.report_levels = (4, 5)
    config.rl.task.report_problems = 50
    config.optim = optim.constant_lr(1e-5)
    config.train.steps = 60
    config.train.log_every = 1
    config.train.eval_every = 30
    config.train.eval_at_start = True
    config.train.sample_every = 10
    config.train.checkpoint_every = 10
    config.wandb.project = "llm-jax-rl"
    return config


def sweep(add, arg=None):
    for group_size in (4, 8, 16):
        for lr in (1e-5, 3e-5, 1e-4):
            add(**{"rl.group_size": group_size, "optim.lr": lr})
