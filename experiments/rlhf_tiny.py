"""RLHF on a laptop CPU: the `sft_tiny` policy against the `rm_tiny` reward model, gold beside it.

    llm-jax train experiments/rm_tiny.py && llm-jax train experiments/rlhf_tiny.py
    llm-jax train experiments/rlhf_tiny.py:no_kl     # β = 0: watch proxy and gold part
    llm-jax train experiments/rlhf_tiny.py:ppo       # PPO: a critic, GAE, KL in the rewards
    llm-jax sweep experiments/rlhf_tiny.py           # β

The policy answers the built-in chat prompts; the reward model (trained on pairs the gold
judge ranked) scores each reply at its last token; a k3 KL penalty to the SFT model keeps it
close. Every iteration also scores the rollouts with the programmatic gold judge and logs
`reward/proxy`, `reward/gold` and `kl_sequence` side by side; every evaluation redraws
`overoptimization.png` (both rewards against √KL). The run stops early when the KL passes
`rl.kl_budget` or gold has stayed below its best for `rl.gold_patience` evaluations while the
proxy rose past its value there.
"""

from configs import base, evals, optim, rl, sft
from llm_jax.config import choose


def get_config(arg=None):
    variant = choose(arg, {
        "default": dict(kl_coef=0.05),
        "no_kl": dict(kl_coef=0.0),
        # PPO as TRL's PPOTrainer: k1 KL penalty in the per-token rewards, a critic from the
        # SFT model, 2 epochs × 2 minibatches per rollout.
        "ppo": dict(algorithm="ppo", kl_coef=0.05, epochs=2, minibatches=2),
    }, "rlhf_tiny variant")
    config = base.base_config()
    config.stage = "rl"
    config.evals = evals.rlhf()
    config.init.from_run = "runs/sft_tiny/default"
    config.model = sft.compute_only_model()
    config.rl = rl.rlhf(reward_model="runs/rm_tiny/default", **variant,
                        prompts_per_iteration=16, group_size=4, max_new_tokens=32,
                        temperature=1.0, kl_budget=0.0, gold_patience=3)
    config.rl.task.eval_problems = 22
    config.optim = optim.constant_lr(5e-5)
    config.train.steps = 40
    config.train.log_every = 1
    config.train.eval_every = 5
    config.train.eval_at_start = True
    config.train.sample_every = 10
    config.train.checkpoint_every = 10
    config.wandb.project = "llm-jax-rlhf"
    return config


def sweep(add, arg=None):
    for kl_coef in (0.0, 0.02, 0.05, 0.1):
        add(**{"rl.kl_coef": kl_coef})
