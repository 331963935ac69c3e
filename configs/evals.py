"""Each stage's evaluations (`config.evals`): evaluator name -> its settings, built by
`llm_jax.eval.registry.build_evaluators`. Add, drop or tune one with e.g.
`--config.evals.chat.max_new_tokens=64`."""

import ml_collections


def _evals(**evaluators: dict) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(evaluators)


def pretrain() -> ml_collections.ConfigDict:
    return _evals(lm_loss={})  # eval_loss, eval_ppl, eval_bpb


def sft(max_new_tokens: int = 96) -> ml_collections.ConfigDict:
    # held-out assistant-token loss; replies that end, identity, arithmetic
    return _evals(lm_loss={}, chat=dict(max_new_tokens=max_new_tokens))


def reward_model() -> ml_collections.ConfigDict:
    return _evals(pairs={})  # held-out pair accuracy, margin, ... (eval/*)


def dpo(win_rate_prompts: int = 0, win_rate_max_new_tokens: int = 48
        ) -> ml_collections.ConfigDict:
    # held-out implicit-reward accuracy (eval/rewards/*); gold win rate over the parent
    # (gold/*) on the first N built-in held-out RLHF prompts (0 = all), ties count half
    return _evals(pairs={}, gold_win_rate=dict(prompts=win_rate_prompts,
                                               max_new_tokens=win_rate_max_new_tokens))


def rl(samples: int = 8, ks: tuple = (1, 8), max_new_tokens: int = 0,
       sampled_problems: int = 0) -> ml_collections.ConfigDict:
    # greedy accuracy and pass@k on held-out problems; `samples` per problem at the rollout
    # temperature (0 = greedy only), on `sampled_problems` of them (0 = all);
    # max_new_tokens 0 = the rollouts' rl.max_new_tokens
    return _evals(problems=dict(samples=samples, ks=ks, max_new_tokens=max_new_tokens,
                                sampled_problems=sampled_problems))


def rlhf(max_new_tokens: int = 0) -> ml_collections.ConfigDict:
    # held-out prompts' greedy replies scored by the reward model and the gold judge
    return _evals(reward=dict(max_new_tokens=max_new_tokens))
