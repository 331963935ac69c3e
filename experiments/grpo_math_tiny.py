"""GRPO on arithmetic from the `sft_tiny` model, on a laptop CPU.

    llm-jax train experiments/sft_tiny.py && llm-jax train experiments/grpo_math_tiny.py
    llm-jax train experiments/grpo_math_tiny.py:dr_grpo     # mean-only advantages, constant norm
    llm-jax train experiments/grpo_math_tiny.py:rloo        # leave-one-out baseline
    llm-jax train experiments/grpo_math_tiny.py:gspo        # one importance ratio a completion
    llm-jax sweep experiments/grpo_math_tiny.py             # the algorithms side by side

Each iteration samples G = 8 completions for each of 16 training problems (levels 1-2 of our
generator: one-digit chains and two-digit sums worked in columns) and takes one update on the
group-relative advantages, a wrong reply's negative one only from its first line that departs
from the reference working (`rl.step_credit`). Groups whose samples all got the same reward
carry no gradient; dynamic sampling (`rl.refill_rounds`) swaps them for groups of fresh
problems. Held-out accuracy (greedy, 200 problems a level, and pass@k over 8 samples on 50 of
them) is measured before the first iteration and after the last; word problems (levels 4-5)
are reported beside.
"""

from configs import base, evals, optim, rl, sft
from llm_jax.config import choose

VARIANTS = {
    "default": {},
    "dr_grpo": dict(advantage="dr_grpo", aggregation="dr_grpo"),
    "rloo": dict(advantage="rloo"),
    # one ratio a completion takes one advantage a completion: no per-token step credit
    "gspo": dict(importance="sequence", aggregation="sequence_mean", step_credit=False),
}


def get_config(arg=None):
    variant = choose(arg, VARIANTS, "grpo_math_tiny variant")
    config = base.base_config()
    config.stage = "rl"
    # pass@k (8 samples a problem) on 100 of the held-out problems, 50 a level
    config.evals = evals.rl(max_new_tokens=152, sampled_problems=100)
    config.init.from_run = "runs/sft_tiny/default"
    config.model = sft.compute_only_model()
    # 96 new tokens hold the longest two-digit column working (92 tokens); evaluations get
    # 152, all the 256-token context leaves beside the longest word problem (103 tokens)
    config.rl = rl.grpo(prompts_per_iteration=16, group_size=8, max_new_tokens=96,
                        temperature=0.8, refill_rounds=2, **(dict(step_credit=True) | variant))
    # 200 a level, all level 1 holds: with 50 a level the greedy figure moved by ±5 points
    # between checkpoints of one run, and gains of +4 to +10 were +1 to +2 on this set
    config.rl.task.eval_problems = 400
    config.rl.task.report_levels = (4, 5)  # word problems, 50 a level, beside the headline
    config.rl.task.report_problems = 50
    config.optim = optim.constant_lr(3e-5)
    # 60 iterations: about 8 1/2 minutes on 2 cores with the evaluations before and after
    config.train.steps = 60
    config.train.log_every = 1
    config.train.eval_every = 0  # before and after: evaluations are a third of the budget
    config.train.eval_at_start = True
    config.train.sample_every = 10
    config.train.checkpoint_every = 20
    config.wandb.project = "llm-jax-rl"
    return config


# Each trial of the comparison gets the same wall time (iterations differ in cost: rejection
# sampling trains on the kept completions only); greedy held-out accuracy before and after.
EQUAL_TIME = {"train.time_budget_s": 180.0, "train.steps": 1000, "train.eval_every": 0,
              "evals.problems.samples": 0, "rl.task.report_levels": ()}


def sweep(add, arg=None):
    """`llm-jax sweep experiments/grpo_math_tiny.py`: GRPO (with and without dynamic
    sampling), Dr. GRPO, RLOO and rejection sampling from the same SFT model, 3 minutes of
    training each; `llm-jax compare --sweep DIR` plots them."""
    add(**EQUAL_TIME, **{"rl.advantage": "grpo"})
    add(**EQUAL_TIME, **{"rl.advantage": "grpo", "rl.refill_rounds": 0})
    add(**EQUAL_TIME, **{"rl.advantage": "dr_grpo", "rl.aggregation": "dr_grpo"})
    add(**EQUAL_TIME, **{"rl.advantage": "rloo"})
    add(**EQUAL_TIME, **{"rl.algorithm": "rft", "rl.step_credit": False})
