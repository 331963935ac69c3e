"""Text sampled at fixed prompts during training; the same rng every time, so samples at
different steps differ only because the params did.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import numpy as np

from llm_jax.generate.sampler import Sampler, SamplingConfig


def completion_text(tokenizer, tokens: np.ndarray, mask: np.ndarray) -> str:
    """The generated text of one row, without stop tokens or padding."""
    stops = set(tokenizer.stop_ids)
    return tokenizer.decode([int(t) for t, m in zip(tokens, mask) if m and int(t) not in stops])


def make_sample_fn(sampler: Sampler, tokenizer, prompts: Sequence[str],
                   prompt_ids: Sequence[Sequence[int]], sampling: SamplingConfig,
                   seed: int = 0) -> Callable[[object], list[dict[str, str]]]:
    """`sample(params) -> [{prompt, completion}]`, one row per prompt (× `sampling.n`)."""
    prompts, prompt_ids = list(prompts), [list(p) for p in prompt_ids]

    def sample(params) -> list[dict[str, str]]:
        rollout = sampler.generate(params, prompt_ids, jax.random.PRNGKey(seed), sampling)
        return [{"prompt": prompts[int(rollout.prompt_index[i])],
                 "completion": completion_text(tokenizer, rollout.tokens[i], rollout.mask[i])}
                for i in range(len(rollout.tokens))]

    return sample
