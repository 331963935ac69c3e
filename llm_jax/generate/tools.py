"""Generation with tools: sample, run each call, force its result, go on.

    tools = make_tools(tokenizer, {"search": {"index": "index/"}})   # calculator + search
    rollout = generate_with_tools(sampler, params, prompts, rng, cfg, tokenizer, tools)

A row stops on `<|python_end|>`; the host answers (`search: QUERY` to search, else the
calculator) and forces `<|output_start|>RESULT<|output_end|>`. Forced tokens have `mask` 0
and log-prob 0. A bare `search:` searches with the user's last message."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence

import jax
import numpy as np

from llm_jax.generate.calculator import CalculatorError, evaluate
from llm_jax.generate.sampler import (
    FINISH_LENGTH,
    FINISH_STOP,
    Rollout,
    Sampler,
    SamplingConfig,
    bucket_size,
)

TOOL_ERROR = "error"
Tool = Callable[[str], str]  # the call's argument text -> the output text
# `name: argument` or `name("argument")` (quotes optional): a call addressed to a named tool.
_NAMED_CALL = re.compile(r"\s*([A-Za-z_]\w*)\s*(?::\s*(.*)|\(\s*[\"']?(.*?)[\"']?\s*\))\s*",
                         re.DOTALL)


def calculator(expression: str) -> str:
    """The calculator tool: the value of an arithmetic expression, or "error"."""
    try:
        return evaluate(expression)
    except CalculatorError:
        return TOOL_ERROR


@dataclasses.dataclass(frozen=True)
class Toolbox:
    """The tools calls can reach: `named` by `NAME: ARG` / `NAME("ARG")`, else `default`."""

    named: Mapping[str, Tool] = dataclasses.field(default_factory=dict)
    default: Tool = calculator

    def run(self, call: str, question: Callable[[], str] = str) -> str:
        """The output of one call's text (a tool that raises answers "error"); a named call
        without an argument gets `question()` (the user's last message) instead."""
        match = _NAMED_CALL.fullmatch(call)
        if match and match.group(1) in self.named:
            argument = match.group(2) if match.group(2) is not None else match.group(3)
            argument = argument if argument.strip() else question()
            tool = self.named[match.group(1)]
        else:
            tool, argument = self.default, call
        try:
            return tool(argument.strip())
        except Exception:  # noqa: BLE001 - model-written calls must not end a rollout
            return TOOL_ERROR


def search_call(query: str) -> str:
    """The text of a search call, as SFT data writes it in a `python` part."""
    return f"search: {query}"


@dataclasses.dataclass(frozen=True)
class ToolTokens:
    """The tool tokens of a tokenizer, and the tools calls between them reach."""

    python_start: int
    python_end: int
    output_start: int
    output_end: int
    toolbox: Toolbox = dataclasses.field(default_factory=Toolbox, compare=False)

    @classmethod
    def from_tokenizer(cls, tokenizer, toolbox: Toolbox | None = None) -> ToolTokens:
        return cls(*(tokenizer.special_id(t) for t in (
            "<|python_start|>", "<|python_end|>", "<|output_start|>", "<|output_end|>")),
            toolbox=toolbox or Toolbox())


def make_tools(tokenizer, settings: Mapping | None = None) -> ToolTokens | None:
    """Calculator, and search when `settings["search"]["index"]` is set (None: no tool tokens)."""
    if not hasattr(tokenizer, "special_id"):
        return None
    search = dict((settings or {}).get("search") or {})
    named: dict[str, Tool] = {}
    if search.get("index"):
        from llm_jax.generate.search import SearchIndex

        named["search"] = SearchIndex.load(search["index"], k=search.get("top_k", 1),
                                           max_chars=search.get("max_chars", 300))
    return ToolTokens.from_tokenizer(tokenizer, Toolbox(named))


def tool_output(tokens: Sequence[int], tokenizer, tools: ToolTokens,
                prompt: Sequence[int] = ()) -> list[int]:
    """The forced tokens answering the call that `tokens` ends with (`prompt`: the tokens
    before them, where a call without an argument finds the user's question)."""
    tokens = list(tokens)
    starts = [i for i, t in enumerate(tokens) if t == tools.python_start]
    call = tokenizer.decode(tokens[starts[-1] + 1:-1]) if starts else ""
    result = tools.toolbox.run(call, lambda: last_user_text(prompt, tokenizer))
    return [tools.output_start, *tokenizer.encode(result), tools.output_end]


def last_user_text(prompt: Sequence[int], tokenizer) -> str:
    """The text of the last user turn in `prompt` (our template's
    `<|im_start|>user<|im_sep|>TEXT<|im_end|>`); "" when there is none."""
    start, sep, end = (tokenizer.special_id(t) for t in
                       ("<|im_start|>", "<|im_sep|>", "<|im_end|>"))
    prompt = [int(t) for t in prompt]
    text = ""
    for i in [i for i, t in enumerate(prompt) if t == start]:
        rest = prompt[i + 1:]
        if sep not in rest or tokenizer.decode(rest[:rest.index(sep)]).strip() != "user":
            continue
        body = rest[rest.index(sep) + 1:]
        text = tokenizer.decode(body[:body.index(end)] if end in body else body)
    return text


@dataclasses.dataclass
class _Row:
    prompt: list[int]
    tokens: list[int] = dataclasses.field(default_factory=list)
    logprobs: list[float] = dataclasses.field(default_factory=list)
    mask: list[int] = dataclasses.field(default_factory=list)
    finish: int = FINISH_LENGTH
    calls: int = 0

    def add(self, tokens, logprobs, mask) -> None:
        self.tokens += [int(t) for t in tokens]
        self.logprobs += [float(x) for x in logprobs]
        self.mask += [int(m) for m in mask]


def generate_with_tools(sampler: Sampler, params, prompts: Sequence[Sequence[int]],
                        rng: jax.Array, cfg: SamplingConfig, tokenizer, tools: ToolTokens, *,
                        max_calls: int = 4, on_token=None, on_forced=None,
                        on_round=None) -> Rollout:
    """`sampler.generate` with tool calls run and their results forced in (`max_calls` per row).

    Callbacks: `on_token(step, ids)` as in `Sampler.generate`, `on_forced(row, ids)` per forced
    output, `on_round(rows)` the rows of each round's sampler call."""
    budget = cfg.max_new_tokens
    with_stop = dataclasses.replace(cfg, stop_tokens=(*cfg.stop_tokens, tools.python_end))
    if on_round is not None:
        on_round(range(len(prompts) * cfg.n))
    first = sampler.generate(params, prompts, rng, with_stop, on_token=on_token)
    rows = [_Row(prompt=[int(t) for t, m in zip(p, pm) if m])
            for p, pm in zip(first.prompt_tokens, first.prompt_mask)]
    pending = _absorb(rows, range(len(rows)), first, budget, tokenizer, tools, max_calls,
                      on_forced)
    round_index = 0
    max_len = sampler.model.cfg.max_seq_len
    while pending:
        for i in [i for i in pending if len(rows[i].prompt) + len(rows[i].tokens) >= max_len]:
            rows[i].finish = FINISH_LENGTH  # no room left in the model's context
        pending = [i for i in pending if len(rows[i].prompt) + len(rows[i].tokens) < max_len]
        if not pending:
            break
        round_index += 1
        left = max(budget - len(rows[i].tokens) for i in pending)
        limit = max_len - max(len(rows[i].prompt) + len(rows[i].tokens)
                                                    for i in pending)
        # Round the budget up (fewer compiled shapes); rows are cut back to their own below.
        step_cfg = dataclasses.replace(with_stop, n=1,
                                       max_new_tokens=max(1, min(bucket_size(left, 64), limit)))
        if on_round is not None:
            on_round(pending)
        out = sampler.generate(params, [rows[i].prompt + rows[i].tokens for i in pending],
                               jax.random.fold_in(rng, round_index), step_cfg,
                               on_token=on_token)
        pending = _absorb(rows, pending, out, budget, tokenizer, tools, max_calls, on_forced)
    return _to_rollout(rows, first, budget, cfg.pad_id)


def _absorb(rows: list[_Row], indices, out: Rollout, budget: int, tokenizer,
            tools: ToolTokens, max_calls: int, on_forced=None) -> list[int]:
    """Append a generate() result to its rows; returns the rows that continue after a call."""
    pending = []
    for j, i in enumerate(indices):
        row = rows[i]
        n = min(int(out.lengths[j]), budget - len(row.tokens))
        row.add(out.tokens[j, :n], out.logprobs[j, :n], [1] * n)
        ended_in_call = n > 0 and row.tokens[-1] == tools.python_end
        if not ended_in_call:
            # Cut by our own budget, the row ran out of length; else it finished as generated.
            cut = n < int(out.lengths[j])
            row.finish = FINISH_LENGTH if cut else int(out.finish_reason[j])
            continue
        forced = tool_output(row.tokens, tokenizer, tools, row.prompt)
        if on_forced is not None:
            on_forced(i, forced)
        room = budget - len(row.tokens)
        row.add(forced[:room], [0.0] * min(room, len(forced)), [0] * min(room, len(forced)))
        row.calls += 1
        if room <= len(forced):
            row.finish = FINISH_LENGTH
        elif row.calls >= max_calls:
            row.finish = FINISH_STOP
        else:
            pending.append(i)
    return pending


def _to_rollout(rows: list[_Row], first: Rollout, budget: int, pad_id: int) -> Rollout:
    n = len(rows)
    tokens = np.full((n, budget), pad_id, np.int32)
    logprobs = np.zeros((n, budget), np.float32)
    mask = np.zeros((n, budget), np.int32)
    for i, row in enumerate(rows):
        k = len(row.tokens)
        tokens[i, :k], logprobs[i, :k], mask[i, :k] = row.tokens, row.logprobs, row.mask
    return Rollout(prompt_tokens=first.prompt_tokens, prompt_mask=first.prompt_mask,
                   tokens=tokens, logprobs=logprobs, mask=mask,
                   lengths=np.array([len(r.tokens) for r in rows], np.int32),
                   finish_reason=np.array([r.finish for r in rows], np.int32),
                   prompt_index=first.prompt_index)
