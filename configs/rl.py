"""The RL section of a config (read by `llm_jax/trainers/rl.py`): task, rollout, algorithm.

Algorithms are data, not copies of the loop: GRPO, Dr. GRPO, RLOO, DAPO-style clip-higher
and rejection-sampling fine-tuning are all this one section with different values (see
`grpo()`, `dr_grpo()` and `rft()` below for the usual combinations).
"""

import ml_collections

from llm_jax.data.splits import DEFAULT_HELDOUT_FRACTION


def task(**overrides) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(
        source="arithmetic",  # arithmetic | reasoning_gym | gsm8k | rlhf (built-in prompts)
        levels=(1, 2),  # arithmetic: curriculum levels mixed uniformly
        dataset="gsm_symbolic",  # reasoning_gym: the generator
        size=2000,  # reasoning_gym: problems generated (then split)
        paths=(),  # gsm8k: JSONL files (`question`, `answer` ending `#### N`)
        seed=0,
        # train and held-out problems never share a question (arithmetic: a computation)
        heldout_fraction=DEFAULT_HELDOUT_FRACTION,
        # held-out problems in each evaluation; arithmetic: the same number from each level
        eval_problems=100,
        # arithmetic: levels evaluated beside the task's (e.g. word problems), reported per
        # level but not in the headline accuracy; never trained on by RL
        report_levels=(),
        report_problems=0,  # held-out problems a reported level (0 = as many as a task level)
    ) | overrides)


def rl(**overrides) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(
        # policy_gradient (GRPO family) | ppo (critic + GAE) | rft (rejection sampling)
        algorithm="policy_gradient",
        task=task(),
        # --- rollout: prompts_per_iteration × group_size completions per iteration
        prompts_per_iteration=8,
        group_size=8,  # G: samples per prompt
        max_new_tokens=64,
        temperature=1.0,
        # ratio, gradient and KL on the log-probs of the tempered policy that sampled
        # (logits / temperature), as TRL; False: of the model at temperature 1, which is
        # off-policy from the first update when temperature != 1
        tempered_logprobs=False,
        top_p=1.0,
        top_k=0,
        # DAPO's dynamic sampling: replace groups whose samples all got the same reward (no
        # gradient) with groups of fresh training problems, up to `refill_rounds` extra
        # rollouts of `prompts_per_iteration` problems each; 0 = off
        refill_rounds=0,
        tools=True,  # answer calculator calls (our tokenizer only); forced tokens get no loss
        system="",  # a system message for every prompt ("" = none)
        # --- rewards (one protocol: prompts, completions, meta -> rewards)
        # math (correctness + format) | reward_model (the RM run in rl.reward_model) | gold
        # (the programmatic judge itself) | "package.module:name" of any RewardFn
        reward="math",
        reward_model="",  # a reward_model stage's run directory
        # --- RLHF: the gold judge beside the proxy, KL tracking, stop rules
        gold=False,  # also score rollouts and evaluations with the gold judge
        track_kl=False,  # load the reference even at kl_coef=0, to log the KL
        kl_budget=0.0,  # stop when the rollouts' sequence KL exceeds it (0 = off)
        gold_patience=0,  # stop once gold stayed below its best this many evaluations while
        # the proxy rose past its value there (0 = off)
        correct_weight=1.0,
        format_weight=0.0,  # bonus for ending with a proper "#### N" line
        truncated_reward=0.0,  # what a completion cut at max_new_tokens gets; None = no override
        # --- advantages and loss
        advantage="grpo",  # grpo (mean/std) | dr_grpo (mean only) | rloo (leave-one-out)
        eps_low=0.2,
        eps_high=0.2,  # > eps_low = DAPO's clip-higher
        kl_coef=0.0,  # β; 0 loads no reference model. The loss's KL is k3 (k1 as a loss term
        # has zero expected gradient); PPO pays k1 in its rewards instead
        kl_bias_correction=False,  # k3 × sg(π/π_old): the reverse KL's unbiased gradient
        importance="token",  # token (PPO/GRPO ratio) | sequence (GSPO: one ratio a completion)
        # a wrong reply's negative advantage only from its first line that differs from the
        # reference working on (task problems with meta['solution']; llm_jax/rl/step_credit.py)
        step_credit=False,
        seq_eps_low=3e-4,  # GSPO's clip range on the sequence ratio
        seq_eps_high=4e-4,
        aggregation="token_mean",  # token_mean | sequence_mean | dr_grpo
        epochs=1,  # μ: passes over each rollout batch
        # β = 0 only: leave rows with advantage 0 (groups that all got the same reward) out of
        # the learner; the loss and gradient are unchanged, the learner does less work
        skip_zero_advantage=True,
        minibatches=1,  # updates per pass
        # --- PPO (algorithm=ppo): per-token rewards (score at the end, −β·KL on every
        # token), GAE over a critic's values; TRL's PPOTrainer defaults
        gamma=1.0,
        lam=0.95,
        vf_coef=0.1,  # weight of the critic's clipped value loss
        value_clip=0.2,  # how far a value may move from the rollout's per update
        whiten_advantages=True,
        # --- rejection sampling (algorithm=rft): keep the shortest correct completions
        rft_keep=1,  # per prompt
        # --- diagnostics (evaluations: config.evals, configs/evals.py)
        warn_after=5,  # iterations with nothing learnable before a loud warning
    ) | overrides)


def rlhf(**overrides) -> ml_collections.ConfigDict:
    """RL against a reward model: chat prompts, the gold judge logged beside it, KL tracked."""
    config = rl(**(dict(reward="reward_model", gold=True, track_kl=True, tools=False,
                        kl_coef=0.05) | overrides))
    config.task.source = "rlhf"
    return config


def ppo(**overrides) -> ml_collections.ConfigDict:
    """PPO as in RLHF (Ouyang et al. 2022): one sample per prompt, a critic, several epochs
    of minibatch updates on each rollout."""
    return rl(**(dict(algorithm="ppo", group_size=1, epochs=4, minibatches=2) | overrides))


def grpo(**overrides) -> ml_collections.ConfigDict:
    return rl(**overrides)


def dr_grpo(**overrides) -> ml_collections.ConfigDict:
    return rl(**(dict(advantage="dr_grpo", aggregation="dr_grpo") | overrides))


def rft(**overrides) -> ml_collections.ConfigDict:
    return rl(**(dict(algorithm="rft") | overrides))
