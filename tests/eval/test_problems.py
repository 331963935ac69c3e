"""Held-out problem evaluation: pass@k on an even share of each level when asked."""

from collections import Counter

from llm_jax.eval.problems import make_problem_evaluator
from llm_jax.generate.sampler import Sampler
from llm_jax.recipes.math.task import Problem
from tests.helpers import CharTokenizer, random_params, tiny_config


class _Tokenizer(CharTokenizer):
    stop_ids = (CharTokenizer.eos_id,)


class _PlainTemplate:
    """The prompt's bytes as they are; generation stops at EOS."""

    def render_for_generation(self, messages, tokenizer):
        return tokenizer.encode(messages[-1]["content"])

    def stop_ids(self, tokenizer):
        return (tokenizer.eos_id,)


def test_pass_at_k_on_an_even_share_of_each_level():
    model, params = random_params(tiny_config(vocab_size=CharTokenizer.vocab_size))
    problems = [Problem(f"{level} and {i}?", "7", {"level": level})
                for level in (1, 2) for i in range(6)]
    problems.append(Problem("word?", "7", {"level": 4, "report_only": True}))
    scored = []

    def score(text, problem):
        scored.append(problem)
        return problem.prompt.startswith("1")  # level 1 always right, level 2 never

    evaluate = make_problem_evaluator(Sampler(model), _Tokenizer(), _PlainTemplate(),
                                      problems, score, max_new_tokens=3, samples=2, ks=(1, 2),
                                      sampled_problems=4)
    metrics = evaluate(params)
    greedy, sampled = scored[:len(problems)], scored[len(problems):]
    assert greedy == problems  # greedy: every problem, report-only ones included
    # pass@k: the first 2 headline problems of each level, `samples` replies each
    assert Counter(p.prompt for p in sampled) == {"1 and 0?": 2, "1 and 1?": 2,
                                                  "2 and 0?": 2, "2 and 1?": 2}
    assert metrics["eval/accuracy"] == 0.5
    assert metrics["eval/answer_first"] == 0.0  # three random characters state no answer
    assert metrics["eval/answer_only"] == 0.0  # nor are they a `#### N` line alone
    assert metrics["eval/pass@2"] == 0.5 and metrics["eval/pass@1/level_1"] == 1.0
