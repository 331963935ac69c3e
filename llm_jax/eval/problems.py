"""Held-out problems answered through the sampler: greedy accuracy (moves only with the
params), pass@k from `samples` replies at a fixed rng (unbiased estimator), lengths. For
RLHF prompts, where nothing can be checked, the replies' scores under named reward functions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import numpy as np

from llm_jax.eval.chat import generate_replies
from llm_jax.eval.math import accuracy_by, pass_at_k_metrics
from llm_jax.generate.sampler import FINISH_LENGTH, Sampler, SamplingConfig
from llm_jax.generate.tools import ToolTokens
from llm_jax.recipes.math.answers import answers_at_once, extract_answer, opens_with_answer
from llm_jax.recipes.math.task import Problem

Scorer = Callable[[str, Problem], bool]


def render_problems(problems: Sequence[Problem], tokenizer, template) -> list[list[int]]:
    """Each problem as a one-turn chat prompt, ready for generation."""
    return [template.render_for_generation([{"role": "user", "content": p.prompt}], tokenizer)
            for p in problems]


def tool_rate(rollout) -> float:
    """The share of replies with a forced (tool output) token: those that called a tool."""
    used = np.arange(rollout.mask.shape[1])[None, :] < rollout.lengths[:, None]
    return float(((rollout.mask == 0) & used).any(axis=1).mean())


def make_problem_evaluator(sampler: Sampler, tokenizer, template, problems: Sequence[Problem],
                           score: Scorer, *, max_new_tokens: int, samples: int = 0,
                           ks: Sequence[int] = (1,), temperature: float = 1.0,
                           tools: ToolTokens | None = None, prefix: str = "eval/",
                           seed: int = 0, sampled_problems: int = 0
                           ) -> Callable[[object], dict[str, float]]:
    """`evaluate(params) -> metrics` on `problems` (greedy, then pass@k when `samples`, on
    `sampled_problems` of them, as many from each level, or all when 0)."""
    if not problems:
        raise ValueError("no held-out problems to evaluate on")
    prompts = render_problems(problems, tokenizer, template)
    stops = tuple(template.stop_ids(tokenizer))
    greedy = SamplingConfig(max_new_tokens=max_new_tokens, temperature=0.0, stop_tokens=stops,
                            pad_id=tokenizer.pad_id)
    ks = tuple(k for k in ks if k <= samples)
    levels = {p.meta.get("level") for p in problems}  # a curriculum's levels, scored apart
    # Problems marked report_only (e.g. word problems beside bare sums) are scored per level
    # but kept out of the headline accuracy and of pass@k.
    headline = np.array([not p.meta.get("report_only") for p in problems], bool)
    if not headline.any():
        raise ValueError("every held-out problem is report_only: nothing for the headline")
    sampled = [i for i in range(len(problems)) if headline[i]]
    if sampled_problems:
        # pass@k costs `samples` replies a problem: on a large set, an even share per level
        by_level: dict = {}
        for i in sampled:
            by_level.setdefault(problems[i].meta.get("level"), []).append(i)
        share = max(1, sampled_problems // len(by_level))
        sampled = sorted(i for indices in by_level.values() for i in indices[:share])

    def evaluate(params) -> dict[str, float]:
        rollout, texts = generate_replies(sampler, params, prompts, jax.random.PRNGKey(seed),
                                          greedy, tokenizer, tools)
        correct = np.array([score(t, p) for t, p in zip(texts, problems)], bool)
        metrics = {"accuracy": float(correct[headline].mean()), **{
                   f"accuracy/level_{level}": value for level, value in accuracy_by(
                       correct, [p.meta.get("level") for p in problems]).items()
                   if level is not None and len(levels) > 1},
                   "answer_rate": float(np.mean([extract_answer(t) is not None for t in texts])),
                   # replies that state the answer before working it out (a style RL may shift)
                   "answer_first": float(np.mean([opens_with_answer(t) for t in texts])),
                   "answer_only": float(np.mean([answers_at_once(t) for t in texts])),
                   "tool_rate": tool_rate(rollout),
                   "response_length": float(rollout.lengths.mean()),
                   "truncated": float((rollout.finish_reason == FINISH_LENGTH).mean())}
        if samples and ks:
            cfg = SamplingConfig(max_new_tokens=max_new_tokens, temperature=temperature,
                                 n=samples, stop_tokens=stops, pad_id=tokenizer.pad_id)
            _, texts = generate_replies(sampler, params, [prompts[i] for i in sampled],
                                        jax.random.PRNGKey(seed + 1), cfg, tokenizer, tools)
            table = np.array([score(t, problems[sampled[i // samples]])
                              for i, t in enumerate(texts)], bool).reshape(len(sampled), samples)
            metrics.update(pass_at_k_metrics(table, ks))
            sampled_levels = np.array([str(problems[i].meta.get("level")) for i in sampled])
            if len(set(sampled_levels)) > 1:  # pass@k per level too
                for level in dict.fromkeys(sampled_levels):
                    metrics.update({f"{k}/level_{level}": v for k, v in pass_at_k_metrics(
                        table[sampled_levels == level], ks).items()})
        return {prefix + k: v for k, v in metrics.items()}

    return evaluate


def make_reward_evaluator(sampler: Sampler, tokenizer, template, problems: Sequence[Problem],
                          rewards: dict[str, Callable], *, max_new_tokens: int,
                          prefix: str = "eval/", seed: int = 0
                          ) -> Callable[[object], dict[str, float]]:
    """`evaluate(params) -> metrics`: greedy replies to held-out prompts scored by each named
    reward function (e.g. the reward model as "proxy_reward", the gold judge as
    "gold_reward"): the RLHF counterpart of accuracy, where nothing can be checked."""
    prompts = render_problems(problems, tokenizer, template)
    greedy = SamplingConfig(max_new_tokens=max_new_tokens, temperature=0.0,
                            stop_tokens=tuple(template.stop_ids(tokenizer)),
                            pad_id=tokenizer.pad_id)
    texts_of = [p.prompt for p in problems]

    def evaluate(params) -> dict[str, float]:
        rollout, texts = generate_replies(sampler, params, prompts, jax.random.PRNGKey(seed),
                                          greedy, tokenizer)
        metas = [{**p.meta, "truncated": bool(f == FINISH_LENGTH)}
                 for p, f in zip(problems, rollout.finish_reason)]
        metrics = {name: float(np.mean(fn(texts_of, texts, metas)))
                   for name, fn in rewards.items()}
        metrics["response_length"] = float(rollout.lengths.mean())
        return {prefix + k: v for k, v in metrics.items()}

    return evaluate
