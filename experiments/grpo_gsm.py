"""GRPO on grade-school math (reasoning-gym's `gsm_symbolic`) from a Hub model, on accelerators.

    llm-jax train experiments/grpo_gsm.py          # Qwen2.5-0.5B-Instruct (network to fetch it)
    llm-jax train experiments/grpo_gsm.py --config.init.from_hf=/models/Qwen2.5-1.5B-Instruct
    llm-jax train experiments/grpo_gsm.py:dr_grpo

The model's own tokenizer and chat template render the problems; a completion is right when
its final answer (`#### N`, "the answer is N", `\\boxed{N}`) passes the generator's verifier.
Recipe (DeepSeekMath/DAPO-style): 32 problems × G = 8 samples per iteration, up to 512 new
tokens at temperature 1, clip-higher (ε 0.2/0.28), token-mean aggregation, k3 KL at β = 0.04
to the starting model, AdamW at 1e-6 constant, bf16 compute over fp32 params, FSDP over all
devices; held-out greedy accuracy and pass@8 every 25 iterations.
"""

from configs import base, evals, mesh, optim, rl, sft
from llm_jax.config import choose


def get_config(arg=None):
    variant = choose(arg, {"default": {}, "dr_grpo": dict(advantage="dr_grpo",
                                                          aggregation="dr_grpo")},
                     "grpo_gsm variant")
    config = base.base_config()
    config.stage = "rl"
    config.evals = evals.rl(samples=8, ks=(1, 8))
    config.init.from_hf = "Qwen/Qwen2.5-0.5B-Instruct"
    config.model = sft.compute_only_model()
    config.model.dtype = "bfloat16"
    config.mesh = mesh.mesh("fsdp")
    config.rl = rl.grpo(
        prompts_per_iteration=32, group_size=8, max_new_tokens=512, temperature=1.0,
        eps_low=0.2, eps_high=0.28, kl_coef=0.04,
        aggregation="token_mean", tools=False, format_weight=0.0, **variant)
    config.rl.task = rl.task(source="reasoning_gym", dataset="gsm_symbolic", size=20000,
                             eval_problems=200)
    config.optim = optim.constant_lr(1e-6, warmup_steps=10)
    config.train.steps = 500
    config.train.log_every = 1
    config.train.eval_every = 25
    config.train.eval_at_start = True
    config.train.sample_every = 25
    config.train.checkpoint_every = 25
    config.wandb.project = "llm-jax-rl"
    return config


def sweep(add, arg=None):
    for kl_coef in (0.0, 0.04):
        for lr in (5e-7, 1e-6, 2e-6):
            add(**{"rl.kl_coef": kl_coef, "optim.lr": lr})
