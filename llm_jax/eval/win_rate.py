"""Gold win rate: how often the noise-free gold judge prefers a policy's greedy reply to a
baseline's (made once). A tie counts half, so a policy equal to its baseline scores exactly 0.5.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import numpy as np

from llm_jax.generate.sampler import Sampler, SamplingConfig
from llm_jax.recipes.gold import GoldLabeler, GoldPrompt, sample_responses


def make_win_rate_evaluator(sampler: Sampler, tokenizer, template,
                            prompts: Sequence[GoldPrompt], baseline_params, judge: GoldLabeler,
                            *, max_new_tokens: int = 48, prefix: str = "gold/"
                            ) -> Callable[[object], dict[str, float]]:
    cfg = SamplingConfig(max_new_tokens=max_new_tokens, temperature=0.0)
    messages = [p.messages for p in prompts]
    rng = jax.random.PRNGKey(0)  # unused by greedy decoding, but the sampler takes one
    baseline: list[str] = []

    def replies(params) -> list[str]:
        return [group[0] for group in sample_responses(sampler, params, tokenizer, template,
                                                       messages, 1, rng, cfg)]

    def evaluate(params) -> dict[str, float]:
        if not baseline:
            baseline.extend(replies(baseline_params))
        ours = replies(params)
        verdicts = [judge.prefer(p.text, a, b, p.meta)
                    for p, a, b in zip(prompts, ours, baseline)]
        wins = np.array([1.0 if v else 0.5 if v is None else 0.0 for v in verdicts])
        score = lambda texts: float(np.mean(  # noqa: E731
            judge([p.text for p in prompts], texts, [p.meta for p in prompts])))
        return {f"{prefix}win_rate": float(wins.mean()), f"{prefix}score": score(ours),
                f"{prefix}baseline_score": score(baseline),
                f"{prefix}ties": float(np.mean([v is None for v in verdicts]))}

    return evaluate
