"""Chat evaluations through the one sampler: do replies end (on `<|im_end|>` within
`max_new_tokens`), does the model name itself, does it get held-out arithmetic right (the
calculator answering its calls, as in chat and RL). Greedy, so numbers move only with params.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import numpy as np

from llm_jax.eval.math import accuracy_by
from llm_jax.eval.samples import completion_text
from llm_jax.generate.sampler import FINISH_STOP, Rollout, Sampler, SamplingConfig
from llm_jax.generate.tools import ToolTokens, generate_with_tools
from llm_jax.recipes.math.answers import check
from llm_jax.recipes.math.task import Problem


def reply_texts(tokenizer, rollout: Rollout) -> list[str]:
    """Each row's reply as text (sampled and tool tokens, no stop token)."""
    texts = []
    for i in range(len(rollout.tokens)):
        used = (np.arange(rollout.tokens.shape[1]) < rollout.lengths[i]).astype(np.int32)
        texts.append(completion_text(tokenizer, rollout.tokens[i], used))
    return texts


def ended_with(rollout: Rollout, end_id: int) -> np.ndarray:
    """bool [rows]: the reply stopped on `end_id` within the token budget."""
    last = rollout.tokens[np.arange(len(rollout.tokens)), np.maximum(rollout.lengths - 1, 0)]
    return (rollout.finish_reason == FINISH_STOP) & (last == end_id) & (rollout.lengths > 0)


def generate_replies(sampler: Sampler, params, prompts: Sequence[Sequence[int]], rng: jax.Array,
                     cfg: SamplingConfig, tokenizer, tools: ToolTokens | None = None
                     ) -> tuple[Rollout, list[str]]:
    """(rollout, reply texts) for rendered prompts, with calculator calls answered when
    `tools` is given: the one way evaluations and RL rollouts ask the model."""
    rollout = (generate_with_tools(sampler, params, prompts, rng, cfg, tokenizer, tools)
               if tools is not None else sampler.generate(params, prompts, rng, cfg))
    return rollout, reply_texts(tokenizer, rollout)


def make_chat_evaluator(sampler: Sampler, tokenizer, template, *,
                        identity_questions: Sequence[str] = (), identity_name: str = "",
                        math_problems: Sequence[Problem] = (),
                        extra_prompts: Sequence[str] = (), max_new_tokens: int = 64,
                        tools: ToolTokens | None = None, prefix: str = ""
                        ) -> Callable[[object], dict[str, float]]:
    """`evaluate(params) -> metrics` over one batch of greedy replies to every question."""
    render = lambda q: template.render_for_generation(  # noqa: E731
        [{"role": "user", "content": q}], tokenizer)
    # Questions whose prompt leaves no room for the reply in the context are left out.
    room = sampler.model.cfg.max_seq_len - max_new_tokens
    fits = lambda q: len(render(q)) <= room  # noqa: E731
    identity_questions = [q for q in identity_questions if fits(q)]
    math_problems = [p for p in math_problems if fits(p.prompt)]
    extra_prompts = [q for q in extra_prompts if fits(q)]
    questions = [*identity_questions, *(p.prompt for p in math_problems), *extra_prompts]
    if not questions:
        raise ValueError(f"no evaluation question fits in max_seq_len="
                         f"{sampler.model.cfg.max_seq_len} with {max_new_tokens} new tokens")
    prompts = [render(q) for q in questions]
    stops = tuple(template.stop_ids(tokenizer))
    cfg = SamplingConfig(max_new_tokens=max_new_tokens, temperature=0.0, stop_tokens=stops,
                         pad_id=tokenizer.pad_id)
    end_id = stops[0]
    n_id, n_math = len(identity_questions), len(math_problems)

    def evaluate(params) -> dict[str, float]:
        rollout, texts = generate_replies(sampler, params, prompts, jax.random.PRNGKey(0), cfg,
                                          tokenizer, tools)
        metrics = {"chat/end_rate": float(ended_with(rollout, end_id).mean()),
                   "chat/reply_length": float(rollout.lengths.mean())}
        if n_id:
            name = identity_name.lower()
            metrics["chat/identity_acc"] = float(np.mean(
                [name in t.lower() for t in texts[:n_id]]))
        if n_math:
            checks = [check(t, p.answer) for t, p in
                      zip(texts[n_id:n_id + n_math], math_problems)]
            correct = [c.correct for c in checks]
            metrics["math/accuracy"] = float(np.mean(correct))
            metrics["math/has_answer"] = float(np.mean([c.has_answer for c in checks]))
            levels = [p.meta.get("level") for p in math_problems]
            if len(set(levels)) > 1:
                metrics.update({f"math/accuracy/level_{level}": value for level, value
                                in accuracy_by(correct, levels).items() if level is not None})
        return {prefix + k: v for k, v in metrics.items()}

    evaluate.prompts = questions  # for logging sample replies next to the numbers
    return evaluate
