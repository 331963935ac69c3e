"""The whole stack at toy scale on a laptop CPU: tokenizer → pretraining → chat SFT → GRPO on
arithmetic (→ reward model → RLHF, where this checkout has them), each stage started from the
run of the one it builds on.

    llm-jax run experiments/speedrun_tiny.py               # resumes where it stopped
    llm-jax run experiments/speedrun_tiny.py --dry-run     # the stages, run dirs and status
    llm-jax report runs/speedrun_tiny/default              # rewrite the report cards

Each stage is an ordinary experiment file run with shorter settings, in its own directory
under runs/speedrun_tiny/default/ (01-pretrain, 02-sft, 03-grpo, ...); report.md there sums
them up. The pretraining stage first trains the BPE tokenizer on the corpus (its
tokenizer.model is the one every later stage copies), then a ~4M-parameter GPT-2-style model
on Jane Austen and the King James Bible.
"""

from pathlib import Path

from llm_jax.pipeline import Stage

HERE = Path(__file__).resolve().parent
# Every stage logs to one W&B project; the pipeline groups its stages' runs.
COMMON = {"wandb.project": "llm-jax-speedrun"}


def pipeline(arg=None):
    del arg  # one variant for now
    stages = [
        # 300 steps of 8 × 256 tokens (pretrain_tiny: 400); evaluated and sampled halfway.
        Stage("pretrain", "pretrain_tiny.py", COMMON | {
            "train.steps": 300, "train.eval_every": 150, "train.sample_every": 150,
            "train.checkpoint_every": 100}),
        # sft_tiny's 200 steps on the built-in mixture (at 120 only about half the replies
        # to arithmetic ended in "#### N", too few for GRPO to get any reward); evaluated on
        # the base model (step 0) and at the end: held-out loss, replies that end, identity,
        # arithmetic.
        Stage("sft", "sft_tiny.py", COMMON | {
            "train.steps": 200, "train.eval_every": 0, "train.checkpoint_every": 100}),
        # 12 GRPO iterations of 8 problems × 8 samples (grpo_math_tiny: 40); greedy held-out
        # accuracy on 50 problems before and after. Right answers are rare at this size, so
        # most groups would get all-equal rewards: a small bonus for ending with a "#### N"
        # line (as DeepSeek-R1's format reward) leaves something to learn from.
        Stage("grpo", "grpo_math_tiny.py", COMMON | {
            "train.steps": 12, "train.eval_every": 0, "train.sample_every": 4,
            "train.checkpoint_every": 4, "rl.task.eval_problems": 50, "rl.eval_samples": 0,
            "rl.format_weight": 0.1}),
    ]
    return stages + preference_stages()


# ----------------------------------------------------------------------------------------
# Reward model → RLHF: appended only when this checkout has those stages, i.e. a
# `reward_model` trainer in llm_jax.trainers.TRAINERS and the experiment files below.
# Without them the speedrun ends with GRPO.
REWARD_MODEL_EXPERIMENT = "rm_tiny.py"
RLHF_EXPERIMENT = "rlhf_tiny.py"


def preference_stages() -> list[Stage]:
    from llm_jax.pipeline import StageDir
    from llm_jax.trainers import TRAINERS

    if "reward_model" not in TRAINERS or not (HERE / REWARD_MODEL_EXPERIMENT).is_file():
        return []
    # The reward model scores the chat model's replies, so it starts from SFT, not GRPO:
    # 60 steps (rm_tiny: 200), evaluated before and after.
    stages = [Stage("reward_model", REWARD_MODEL_EXPERIMENT, COMMON | {
        "train.steps": 60, "train.eval_every": 0, "train.checkpoint_every": 30},
        parent="sft")]
    if (HERE / RLHF_EXPERIMENT).is_file():
        # RL from the chat model against that reward model (`rl.reward_model`: its run
        # directory), the gold judge beside it: 12 iterations (rlhf_tiny: 40).
        stages.append(Stage("rlhf", RLHF_EXPERIMENT, COMMON | {
            "rl.reward_model": StageDir("reward_model"), "train.steps": 12,
            "train.eval_every": 6, "train.sample_every": 6, "train.checkpoint_every": 6},
            parent="sft"))
    return stages
