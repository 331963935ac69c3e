"""Knowledge-boundary probing: sample a model's answers, score them, and write refusal data.

    results = probe_model(sampler, params, tokenizer, template, questions, settings)
    rows = probe_table(results)                          # per question: correct fraction, answers
    conversations = refusal_conversations(results, settings, search=index)
    conversations += [search_conversation(q, index) for q in practice]  # more, unprobed

Llama 3's factuality recipe: ask factual questions whose answers are known (from the training
text, `recipes/probes.py`), sample K answers each, score them against the truth; where the
model is consistently right it keeps its answer, where it is wrong it is taught to say so
(`REFUSAL`), or, with the search tool on, to look the answer up (a search for the question's
`query`: the quoted line, the character, the verse reference; a question without one, such as
arithmetic, gets the refusal). A reply counts as right when
the normalised reference appears in the normalised reply as whole words (`normalise`: lower
case, no punctuation, no articles or titles, single spaces; arithmetic by the final answer
the math checker extracts), and as a refusal when it says it does not know.
"""

from __future__ import annotations

import dataclasses
import math
import random
import re
from collections.abc import Callable, Sequence

import jax
import numpy as np

from llm_jax.errors import ConfigError
from llm_jax.eval.chat import generate_replies
from llm_jax.eval.samples import completion_text
from llm_jax.generate.sampler import SamplingConfig
from llm_jax.generate.tools import ToolTokens, search_call
from llm_jax.recipes.math.answers import check
from llm_jax.recipes.probes import SEARCH_QUERIES, TITLES, ProbeQuestion, ProbeSettings

REFUSAL = "I don't know."
_DROPPED = {"a", "an", "the", *(t.rstrip(".").lower() for t in TITLES)}
_REFUSAL = re.compile(r"\b(?:i do ?n[o']?t know|i am not sure|i'm not sure)\b")


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    """A question's sampled replies, each reply's own final answer (its text after the last
    tool output, so a passage the search tool returned is never credited as the model's
    answer) and whether that answer is right."""

    question: ProbeQuestion
    answers: tuple[str, ...]
    correct: tuple[bool, ...]
    finals: tuple[str, ...] = ()  # empty: the answers themselves (no tool was used)

    @property
    def correct_fraction(self) -> float:
        return float(np.mean(self.correct)) if self.correct else 0.0

    @property
    def refusal_fraction(self) -> float:
        finals = self.finals or self.answers
        return float(np.mean([is_refusal(a) for a in finals])) if finals else 0.0


def normalise(text: str) -> str:
    words = re.sub(r"[^\w\s]", " ", text.lower()).split()
    return " ".join(w for w in words if w not in _DROPPED)


def is_correct(reply: str, answer: str) -> bool:
    """The normalised `answer` appears, as whole words, in the normalised `reply`."""
    target = normalise(answer)
    return bool(target) and f" {target} " in f" {normalise(reply)} "


def score(reply: str, question: ProbeQuestion) -> bool:
    """Whether `reply` answers `question`: an arithmetic reply by its final answer (the math
    checker's extraction), any other by normalised match."""
    if question.kind == "arithmetic":
        return check(reply, question.answer).correct
    return is_correct(reply, question.answer)


def is_refusal(reply: str) -> bool:
    return bool(_REFUSAL.search(reply.lower().replace("’", "'")))


def label(result: ProbeResult, settings: ProbeSettings) -> str:
    """known | unknown | unsure, by the correct fraction and the thresholds."""
    if result.correct_fraction >= settings.known_at:
        return "known"
    return "unknown" if result.correct_fraction <= settings.unknown_at else "unsure"


def probe_model(sampler, params, tokenizer, template, questions: Sequence[ProbeQuestion],
                settings: ProbeSettings, tools: ToolTokens | None = None
                ) -> list[ProbeResult]:
    """K sampled answers to each question (as a one-turn chat), scored."""
    prompts = [template.render_for_generation([{"role": "user", "content": q.question}],
                                              tokenizer) for q in questions]
    cfg = SamplingConfig(max_new_tokens=settings.max_new_tokens,
                         temperature=settings.temperature, top_k=settings.top_k,
                         top_p=settings.top_p, n=settings.samples,
                         stop_tokens=tuple(template.stop_ids(tokenizer)), pad_id=tokenizer.pad_id)
    rollout, texts = generate_replies(sampler, params, prompts, jax.random.PRNGKey(settings.seed),
                                      cfg, tokenizer, tools)
    finals = final_texts(rollout, tokenizer, tools) if tools is not None else texts
    answers: list[list[str]] = [[] for _ in questions]
    own: list[list[str]] = [[] for _ in questions]
    for row, (text, final) in enumerate(zip(texts, finals)):
        answers[int(rollout.prompt_index[row])].append(text.strip())
        own[int(rollout.prompt_index[row])].append(final.strip())
    return [ProbeResult(q, tuple(a), tuple(score(x, q) for x in f), tuple(f))
            for q, a, f in zip(questions, answers, own)]


def final_texts(rollout, tokenizer, tools: ToolTokens) -> list[str]:
    """Each row's text after its last tool output: the answer the model gave itself."""
    out = []
    positions = np.arange(rollout.tokens.shape[1])
    for i in range(len(rollout.tokens)):
        ends = np.flatnonzero(rollout.tokens[i, :rollout.lengths[i]] == tools.output_end)
        start = ends[-1] + 1 if len(ends) else 0
        mine = (positions >= start) & (positions < rollout.lengths[i])
        out.append(completion_text(tokenizer, rollout.tokens[i], mine.astype(np.int32)))
    return out


def probe_table(results: Sequence[ProbeResult], settings: ProbeSettings) -> list[dict]:
    """One JSON-able row per question."""
    return [{**dataclasses.asdict(r.question), "correct_fraction": r.correct_fraction,
             "refusal_fraction": r.refusal_fraction, "label": label(r, settings),
             "answers": list(r.answers), "final_answers": list(r.finals or r.answers)}
            for r in results]


def probe_metrics(rows: Sequence[dict], baseline: Sequence[dict] | None = None,
                  split: str = "heldout") -> dict[str, float]:
    """Accuracy and refusal rate over `split`; with a `baseline` table (the model before),
    refusal rate on the questions it did not know and false refusals on those it knew."""
    rows = [r for r in rows if r["split"] == split]
    if not rows:
        return {}
    out = {"accuracy": float(np.mean([r["correct_fraction"] for r in rows])),
           "refusal_rate": float(np.mean([r["refusal_fraction"] for r in rows])),
           "questions": float(len(rows))}
    if baseline is not None:
        before = {r["question"]: r["label"] for r in baseline}
        for name, wanted in (("refusal_on_unknown", "unknown"), ("false_refusal_on_known",
                                                                  "known")):
            picked = [r["refusal_fraction"] for r in rows if before.get(r["question"]) == wanted]
            out[name] = float(np.mean(picked)) if picked else float("nan")
            out[f"{wanted}_questions"] = float(len(picked))
    return out


def refusal_conversations(results: Sequence[ProbeResult], settings: ProbeSettings, *,
                          search: Callable[[str], str] | None = None, split: str = "train"
                          ) -> list[list[dict]]:
    """SFT conversations from the `split` questions: a known question keeps a right answer
    the model gave; an unknown one is answered `REFUSAL`, or, with `search` (the search tool),
    with a search call, its output, and the reference answer (`search_conversation`). Unsure
    ones are left out. With `settings.refusal_ratio` > 0, at most that many refusals per kept
    answer are written (a seeded choice): refusals alone teach a model to refuse everything."""
    kept, refused = [], []
    for r in results:
        if r.question.split != split:
            continue
        kind = label(r, settings)
        user = {"role": "user", "content": r.question.question}
        if kind == "known":  # a right reply as the model gave it (a tool call's output aside)
            reply = next(a for a, ok in zip(r.finals or r.answers, r.correct) if ok)
            kept.append([user, {"role": "assistant", "content": reply}])
        elif kind == "unknown" and (search is None or not r.question.query):
            refused.append([user, {"role": "assistant", "content": REFUSAL}])
        elif kind == "unknown":
            kept.append(search_conversation(r.question, search, settings.search_query))
    if settings.refusal_ratio > 0:
        cap = math.ceil(settings.refusal_ratio * max(len(kept), 1))
        chosen = sorted(random.Random(settings.seed).sample(range(len(refused)),
                                                            min(cap, len(refused))))
        refused = [refused[i] for i in chosen]
    return kept + refused


def search_conversation(question: ProbeQuestion, search: Callable[[str], str],
                        search_query: str = "query") -> list[dict]:
    """The question answered with a search, the tool's output, and the reference answer when
    that output holds it; when it does not (the search missed), "I don't know.": the answer
    is always one the context supports. `search_query`: "query" searches for the question's
    `query` (`search: QUERY`), "question" for the question itself (`search:` with no
    argument, which the engine answers with the user's message; `generate/tools.py`)."""
    if search_query not in SEARCH_QUERIES:
        raise ConfigError(f"probe.search_query={search_query!r} is not one of "
                          f"{', '.join(SEARCH_QUERIES)}")
    query = question.query or question.question
    if search_query == "question":
        query = ""
    output = search(query or question.question)
    answer = f"{question.answer}." if is_correct(output, question.answer) else REFUSAL
    return [{"role": "user", "content": question.question},
            {"role": "assistant", "content": [
                {"type": "python", "text": search_call(query).rstrip()},
                {"type": "output", "text": output},
                {"type": "text", "text": answer}]}]
