"""The built-in evaluators of `config.evals` (see `registry.py`), each a thin adapter from a
stage's parts and the config's settings to the module that measures."""

from __future__ import annotations

from llm_jax.errors import ConfigError
from llm_jax.eval.registry import register


@register("lm_loss")
def lm_loss(apply, lm_batches, put_batch, tokenizer):
    """Held-out LM loss, perplexity and bits per byte: `eval_loss`, `eval_ppl`, `eval_bpb`."""
    from llm_jax.eval.heldout import make_lm_evaluator

    return make_lm_evaluator(apply, lm_batches, put_batch, tokenizer.token_byte_lengths())


@register("chat")
def chat(sampler, tokenizer, template, chat_questions, identity_name, tools, *,
         max_new_tokens: int = 96):
    """Greedy replies: do they end, identity, held-out arithmetic (`chat/*`, `math/*`)."""
    from llm_jax.eval.chat import make_chat_evaluator

    return make_chat_evaluator(
        sampler, tokenizer, template, identity_questions=chat_questions["identity"],
        identity_name=identity_name, math_problems=chat_questions["math"],
        extra_prompts=chat_questions["extra"], max_new_tokens=max_new_tokens, tools=tools)


@register("problems")
def problems(sampler, tokenizer, template, heldout_problems, task, tools, rollout_tokens,
             temperature, judges, *, samples: int = 8, ks: tuple = (1, 8),
             max_new_tokens: int = 0, sampled_problems: int = 0):
    """Held-out problems: greedy accuracy and pass@k at the rollout temperature (`eval/*`);
    prompts with nothing to check (RLHF) are scored as `reward` scores them. `max_new_tokens`
    0 = the rollouts' own; `sampled_problems`: pass@k on that many of the headline problems,
    the same number from each level (0 = all)."""
    from llm_jax.eval.problems import make_problem_evaluator

    if not task.checkable:
        return reward(sampler, tokenizer, template, heldout_problems, judges, rollout_tokens,
                      max_new_tokens=max_new_tokens)
    return make_problem_evaluator(
        sampler, tokenizer, template, heldout_problems, task.is_correct,
        max_new_tokens=max_new_tokens or rollout_tokens, samples=samples, ks=tuple(ks),
        temperature=temperature, tools=tools, sampled_problems=sampled_problems)


@register("reward")
def reward(sampler, tokenizer, template, heldout_problems, judges, rollout_tokens, *,
           max_new_tokens: int = 0):
    """Greedy replies to held-out prompts scored by the run's reward and gold judge
    (`eval/proxy_reward`, `eval/gold_reward`): RLHF's accuracy, where nothing is checked."""
    from llm_jax.eval.problems import make_reward_evaluator

    return make_reward_evaluator(sampler, tokenizer, template, heldout_problems, judges,
                                 max_new_tokens=max_new_tokens or rollout_tokens)


@register("pairs")
def pairs(pair_objective, pair_batches, put_batch, mesh):
    """The pairwise stage's own loss and metrics over every held-out pair (`eval/*`)."""
    from llm_jax.eval.pairs import make_pair_evaluator

    return make_pair_evaluator(pair_objective, pair_batches, put_batch, mesh)


@register("gold_win_rate")
def gold_win_rate(sampler, tokenizer, template, reference, *, prompts: int = 0,
                  max_new_tokens: int = 48):
    """How often the gold judge prefers the policy's greedy reply to the reference's on the
    built-in held-out RLHF prompts, the first `prompts` (0 = all); `gold/*`."""
    from llm_jax.eval.win_rate import make_win_rate_evaluator
    from llm_jax.recipes.gold import GoldLabeler, rlhf_prompts

    if prompts < 0 or max_new_tokens < 1:
        raise ConfigError("evals.gold_win_rate: prompts must be >= 0 and max_new_tokens >= 1")
    heldout = rlhf_prompts("heldout")
    return make_win_rate_evaluator(sampler, tokenizer, template, heldout[:prompts or len(heldout)],
                                   reference, GoldLabeler(), max_new_tokens=max_new_tokens)
