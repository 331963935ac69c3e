"""The whole stack at toy scale on a laptop CPU: tokenizer → pretraining → chat SFT → GRPO on
arithmetic → reward model → RLHF, each stage started from the run of the one it builds on.

    llm-jax run experiments/speedrun_tiny.py               # resumes where it stopped
    llm-jax run experiments/speedrun_tiny.py --dry-run     # the stages, run dirs and status
    llm-jax report runs/speedrun_tiny/default              # rewrite the report cards

Each stage is an ordinary experiment file run with shorter settings, in its own directory
under runs/speedrun_tiny/default/ (01-pretrain, 02-sft, 03-grpo, ...); report.md there sums
them up. The pretraining stage first trains the BPE tokenizer on the corpus (its
tokenizer.model is the one every later stage copies), then a ~5M-parameter Llama-style model
on Jane Austen and the King James Bible with generated arithmetic mixed in.
"""

from llm_jax.pipeline import Stage, StageDir

# Every stage logs to one W&B project; the pipeline groups its stages' runs.
COMMON = {"wandb.project": "llm-jax-speedrun"}


def pipeline(arg=None):
    del arg  # one variant for now
    return [
        # pretrain_tiny as it is: 600 steps of 8 × 256 tokens, 40% generated arithmetic;
        # evaluated and sampled halfway.
        Stage("pretrain", "pretrain_tiny.py", COMMON | {"train.checkpoint_every": 200}),
        # sft_tiny as it is: 400 steps on the built-in mixture (80% arithmetic worked in
        # columns), evaluated on the base model (step 0) and at the end: held-out loss,
        # replies that end, identity, held-out arithmetic (50 problems a level).
        Stage("sft", "sft_tiny.py", COMMON | {"train.eval_every": 0}),
        # 36 GRPO iterations of 8 problems × 8 samples at lr 1e-5, all-equal groups refilled
        # (grpo_math_tiny: 40 × 16 × 8 at 3e-5, which on 8 problems an iteration gained only
        # 2 points here); greedy held-out accuracy on 200 problems a level before and after.
        Stage("grpo", "grpo_math_tiny.py", COMMON | {
            "train.steps": 36, "rl.prompts_per_iteration": 8, "optim.lr": 1e-5,
            "train.eval_every": 0,
            "train.sample_every": 12, "train.checkpoint_every": 12, "evals.problems.samples": 0,
            "rl.task.report_levels": ()}),
        # A reward model of the chat model's replies (so it starts from SFT, not GRPO): 60
        # steps (rm_tiny: 200), evaluated before and after.
        Stage("reward_model", "rm_tiny.py", COMMON | {
            "train.steps": 60, "train.eval_every": 0, "train.checkpoint_every": 30},
            parent="sft"),
        # RL from the chat model against that reward model (`rl.reward_model`: its run
        # directory), the gold judge beside it: 12 iterations (rlhf_tiny: 40).
        Stage("rlhf", "rlhf_tiny.py", COMMON | {
            "rl.reward_model": StageDir("reward_model"), "train.steps": 12,
            "train.eval_every": 6, "train.sample_every": 6, "train.checkpoint_every": 6},
            parent="sft"),
    ]
