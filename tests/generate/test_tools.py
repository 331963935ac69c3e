"""Generation with the calculator: calls are answered with forced tokens that are masked out,
the budget counts them, and the sampled tokens' log-probs still equal a full forward pass."""

import jax
import jax.numpy as jnp
import numpy as np

from llm_jax.generate.logprobs import token_logprobs
from llm_jax.generate.sampler import (
    FINISH_LENGTH,
    FINISH_STOP,
    Rollout,
    Sampler,
    SamplingConfig,
    left_pad,
)
from llm_jax.generate.tools import ToolTokens, generate_with_tools, tool_output
from tests.helpers import CharTokenizer, random_params, tiny_config

TOOLS = ToolTokens(python_start=300, python_end=301, output_start=302, output_end=303)
EOS = 3
TOK = CharTokenizer()


class ScriptedSampler:
    """Returns the next scripted continuation for each prompt (one row per prompt)."""

    def __init__(self, scripts):
        self.scripts = [list(s) for s in scripts]
        self.model = type("M", (), {"cfg": type("C", (), {"max_seq_len": 512})})()
        self.calls = []

    def generate(self, params, prompts, rng, cfg, on_token=None):
        self.calls.append([list(p) for p in prompts])
        outs = [self.scripts[self._which(p)].pop(0) for p in prompts]
        n = len(prompts)
        tokens = np.zeros((n, cfg.max_new_tokens), np.int32)
        lengths = np.zeros(n, np.int32)
        stopped = np.zeros(n, bool)
        for i, out in enumerate(outs):
            stop = next((k for k, t in enumerate(out) if t in cfg.stop_tokens), None)
            out = out[:cfg.max_new_tokens] if stop is None else out[:min(stop + 1,
                                                                        cfg.max_new_tokens)]
            tokens[i, :len(out)] = out
            lengths[i] = len(out)
            stopped[i] = stop is not None and stop < cfg.max_new_tokens
        ptok, pmask = left_pad(prompts, max(len(p) for p in prompts), n, 0)
        mask = (np.arange(cfg.max_new_tokens) < lengths[:, None]).astype(np.int32)
        return Rollout(prompt_tokens=ptok, prompt_mask=pmask, tokens=tokens,
                       logprobs=-0.5 * mask.astype(np.float32), mask=mask, lengths=lengths,
                       finish_reason=np.where(stopped, FINISH_STOP, FINISH_LENGTH),
                       prompt_index=np.arange(n, dtype=np.int32))

    def _which(self, prompt):
        return int(prompt[0])  # each test prompt starts with its own index


def test_call_is_answered_and_masked():
    call = [TOOLS.python_start, *TOK.encode("37*48"), TOOLS.python_end]
    sampler = ScriptedSampler([[[50, *call], [60, EOS]], [[70, EOS]]])
    cfg = SamplingConfig(max_new_tokens=32, stop_tokens=(EOS,))
    out = generate_with_tools(sampler, None, [[0, 9], [1, 9]], jax.random.PRNGKey(0), cfg, TOK,
                              TOOLS)
    forced = [TOOLS.output_start, *TOK.encode("1776"), TOOLS.output_end]
    row = [50, *call, *forced, 60, EOS]
    assert out.tokens[0, :len(row)].tolist() == row and out.lengths[0] == len(row)
    assert out.mask[0, :len(row)].tolist() == [1] * (len(call) + 1) + [0] * len(forced) + [1, 1]
    assert (out.logprobs[0, len(call) + 1:len(call) + 1 + len(forced)] == 0).all()
    assert out.finish_reason.tolist() == [FINISH_STOP, FINISH_STOP]
    assert out.tokens[1, :2].tolist() == [70, EOS] and out.lengths[1] == 2
    # The continuation was asked for the whole sequence so far, prompt included.
    assert sampler.calls[1] == [[0, 9, 50, *call, *forced]]


def test_non_arithmetic_call_gets_error_and_budget_counts_forced_tokens():
    call = [TOOLS.python_start, *TOK.encode("import os"), TOOLS.python_end]
    assert tool_output(call, TOK, TOOLS) == [TOOLS.output_start, *TOK.encode("error"),
                                             TOOLS.output_end]
    budget = len(call) + 3  # room for the call and 3 forced tokens, no more
    sampler = ScriptedSampler([[call]])
    out = generate_with_tools(sampler, None, [[0]], jax.random.PRNGKey(0),
                              SamplingConfig(max_new_tokens=budget), TOK, TOOLS)
    assert out.lengths[0] == budget and out.finish_reason[0] == FINISH_LENGTH
    assert out.mask[0].tolist() == [1] * len(call) + [0] * 3
    assert len(sampler.calls) == 1  # nothing left to continue with


def test_sampled_logprobs_equal_a_forward_pass_around_forced_tokens():
    cfg_model = tiny_config("llama", vocab_size=260)
    model, params = random_params(cfg_model)
    sampler = Sampler(model)
    prompt = [2, 40, 41, 42]
    free = sampler.generate(params, [prompt], jax.random.PRNGKey(0),
                            SamplingConfig(max_new_tokens=12, temperature=0.0))
    first, third = (int(t) for t in free.tokens[0, [0, 2]])
    tools = ToolTokens(python_start=first, python_end=third, output_start=256, output_end=257)
    cfg = SamplingConfig(max_new_tokens=16, temperature=0.0)
    out = generate_with_tools(sampler, params, [prompt], jax.random.PRNGKey(0), cfg, TOK, tools)
    n = int(out.lengths[0])
    forced = (np.arange(16) < n) & (out.mask[0] == 0)
    assert forced.sum() >= 2 and out.tokens[0, 3] == 256  # a call answered after 3 tokens
    tokens = np.concatenate([out.prompt_tokens, out.tokens], axis=1)
    real = np.concatenate([out.prompt_mask, (np.arange(16) < n)[None].astype(np.int32)], 1)
    ref = np.asarray(jax.jit(token_logprobs, static_argnums=0)(
        model, params, jnp.asarray(tokens), jnp.asarray(real)))[0, out.prompt_tokens.shape[1] - 1:]
    sampled = out.mask[0] == 1
    np.testing.assert_allclose(out.logprobs[0][sampled], ref[sampled], atol=1e-5)
