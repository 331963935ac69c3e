"""A programmatic "gold" judge of replies, standing in for human raters in offline RLHF.

    gold = GoldLabeler(noise=0.1, seed=0)
    rewards = gold(prompts, completions, metas)        # the reward protocol: np.ndarray [B]
    gold.prefer(prompt, a, b)                          # True: a is better; None: a tie
    order = gold.rank(prompt, responses, rng)          # indices best → worst

A reward model is trained on its labels, RLHF runs against that model, and the policy is
measured with the gold reward it never saw. Score = sum of rules (default weights):
correct +2.0 (answer equals `meta["answer"]` or a bare arithmetic expression's value), topic
+1.0 × share of the prompt's content words used, repetition −1.0 × share of repeated words or
word pairs, length −1.0 × excess over `word_budget` (40, or `meta["max_words"]`, at most 1),
polite +0.1, empty −3.0. `prefer`/`rank` flip with probability `noise`; `__call__` never does."""

from __future__ import annotations

import ast
import dataclasses
import operator
import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np

from llm_jax.data.chat import ChatTemplate, Message
from llm_jax.data.preferences import PreferencePair, ranking_pairs
from llm_jax.generate.sampler import Sampler, SamplingConfig
from llm_jax.recipes.math.answers import check

Meta = Mapping[str, Any]
# Words that carry no topic: function words and the instruction's own verbs ("write", "tell").
STOPWORDS = frozenset("""
    a an the and or but if of to in on at by for with from into onto about as is are was were be
    been being am do does did have has had it its this that these those there here i me my we
    our you your he him his she her they them their what which who whom whose when where why
    how not no yes so than then too very can could would should will shall may might must
    write tell describe explain give say sentence sentences word words short few some one two
    three me please something anything thing things like make list name answer question
""".split())
POLITE = re.compile(r"\b(?:please|thank|thanks|happy to help|glad to help|you're welcome|"
                    r"you are welcome|hope (?:this|that) helps|of course|certainly|kindly)\b",
                    re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9']+")
_EXPRESSION = re.compile(r"(?<![\w.])\d+(?:\s*[-+*/×]\s*\d+)+(?![\w.])")
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.Div: operator.truediv}


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def content_words(text: str) -> set[str]:
    """Topic words: letters only, 3+ characters, not a stopword, a plural `s` dropped."""
    words = (w for w in _words(text) if w.isalpha() and len(w) >= 3 and w not in STOPWORDS)
    return {w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w
            for w in words}


def repetition_share(text: str) -> float:
    """Share of words (after the first) that repeat the previous word or an earlier pair."""
    words = _words(text)
    if len(words) < 2:
        return 0.0
    seen, repeats = set(), 0
    for prev, word in zip(words, words[1:]):
        repeats += word == prev or (prev, word) in seen
        seen.add((prev, word))
    return repeats / (len(words) - 1)


def _evaluate(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_evaluate(node.left), _evaluate(node.right))
    raise ValueError("not plain arithmetic")


def prompt_answer(prompt: str) -> str | None:
    """The value of the one bare arithmetic expression in a prompt ("What is 12 + 7?" → "19"),
    or None when there is none, several, or the value is not a whole number."""
    found = _EXPRESSION.findall(prompt)
    if len(found) != 1:
        return None
    try:
        value = _evaluate(ast.parse(found[0].replace("×", "*"), mode="eval"))
    except (ValueError, SyntaxError, ZeroDivisionError):
        return None
    return str(int(value)) if float(value).is_integer() else None


def prompt_text(prompt: str | Sequence[Mapping[str, Any]]) -> str:
    """The text a judge reads: the prompt itself, or its user turns joined."""
    if isinstance(prompt, str):
        return prompt
    return "\n".join(str(m["content"]) for m in prompt if m.get("role") == "user")


class GoldLabeler:
    """The gold judge: a reward function and a (noisy, seeded) preference labeller."""

    def __init__(self, *, correct: float = 2.0, topic: float = 1.0, repetition: float = 1.0,
                 length: float = 1.0, polite: float = 0.1, empty: float = -3.0,
                 word_budget: int = 40, noise: float = 0.0, seed: int = 0):
        if not 0.0 <= noise <= 1.0:
            raise ValueError(f"label noise is a probability, got {noise}")
        if word_budget < 1:
            raise ValueError(f"word_budget must be >= 1, got {word_budget}")
        self.weights = dict(correct=correct, topic=topic, repetition=repetition, length=length,
                            polite=polite)
        self.empty, self.word_budget, self.noise = empty, word_budget, noise
        self.rng = np.random.default_rng(seed)

    def components(self, prompt: str | Sequence[Mapping], response: str,
                   meta: Meta | None = None) -> dict[str, float]:
        """Each rule's weighted contribution (correct, topic, repetition, length, polite,
        empty) and their sum, `total`."""
        meta = meta or {}
        text = prompt_text(prompt)
        if not response.strip():
            return {name: 0.0 for name in self.weights} | {"empty": float(self.empty),
                                                            "total": float(self.empty)}
        w = self.weights
        reference = meta.get("answer")
        reference = prompt_answer(text) if reference is None else reference
        out = {"correct": w["correct"] * float(check(response, str(reference)).correct)
               if reference is not None else 0.0}
        topic = content_words(text)
        out["topic"] = (w["topic"] * len(topic & content_words(response)) / len(topic)
                        if topic else 0.0)
        out["repetition"] = -w["repetition"] * repetition_share(response)
        budget = int(meta.get("max_words", self.word_budget))
        excess = max(0, len(_words(response)) - budget) / budget
        out["length"] = -w["length"] * min(1.0, excess)
        out["polite"] = w["polite"] * float(POLITE.search(response) is not None)
        out["empty"] = 0.0
        out["total"] = float(sum(out.values()))
        return out

    def score(self, prompt: str | Sequence[Mapping], response: str,
              meta: Meta | None = None) -> float:
        """The gold reward of one reply."""
        return self.components(prompt, response, meta)["total"]

    def __call__(self, prompts: Sequence[str], completions: Sequence[str],
                 meta: Sequence[Meta]) -> np.ndarray:
        """The reward protocol `(prompts, completions, meta) -> float32 [B]` (no noise)."""
        if not len(prompts) == len(completions) == len(meta):
            raise ValueError(f"rewards need one prompt and one meta per completion, got "
                             f"{len(prompts)} prompts, {len(completions)} completions, "
                             f"{len(meta)} metas")
        return np.array([self.score(p, c, m) for p, c, m in zip(prompts, completions, meta)],
                        np.float32)

    def _flip(self, rng: np.random.Generator | None) -> bool:
        return self.noise > 0 and (rng or self.rng).random() < self.noise

    def prefer(self, prompt: str | Sequence[Mapping], a: str, b: str, meta: Meta | None = None,
               rng: np.random.Generator | None = None) -> bool | None:
        """True when `a` is the better reply, False when `b` is, None for a tie (ties are
        never flipped by noise)."""
        score_a, score_b = self.score(prompt, a, meta), self.score(prompt, b, meta)
        if abs(score_a - score_b) < 1e-9:
            return None
        return (score_a > score_b) != self._flip(rng)

    def rank(self, prompt: str | Sequence[Mapping], responses: Sequence[str],
             rng: np.random.Generator | None = None, meta: Meta | None = None) -> list[int]:
        """Indices of `responses` from best to worst (ties keep their order). With noise, a
        pass from best to worst swaps each adjacent pair with probability `noise`."""
        scores = [self.score(prompt, r, meta) for r in responses]
        order = sorted(range(len(responses)), key=lambda i: -scores[i])
        for i in range(len(order) - 1):
            if self._flip(rng):
                order[i], order[i + 1] = order[i + 1], order[i]
        return order


# ---------------------------------------------------------------------------- built-in prompts
TOPICS = ("the sea", "the moon", "a garden", "winter", "a library", "the river", "a mountain",
          "fresh bread", "music", "a storm", "the forest", "a cat", "the sun", "a letter",
          "a ball", "a long journey")
PEOPLE = ("Elizabeth Bennet", "Mr. Darcy", "Catherine Morland", "Emma Woodhouse",
          "Jane Bennet", "Henry Tilney")
TOPIC_TEMPLATES = ("Write a sentence about {}.", "Tell me about {}.",
                   "Describe {} in a few words.")
PERSON_TEMPLATES = ("Tell me about {}.", "Who is {}?")
N_ARITHMETIC = 24


@dataclasses.dataclass(frozen=True)
class GoldPrompt:
    """A prompt for RLHF experiments and what the gold judge may check (`answer`, `topic`)."""

    text: str
    meta: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def messages(self) -> list[Message]:
        return [{"role": "user", "content": self.text}]


def _arithmetic(seed: int = 0) -> list[GoldPrompt]:
    rng, seen, out = random.Random(seed), set(), []
    while len(out) < N_ARITHMETIC:
        op = rng.choice("+-×")
        a, b = rng.randint(2, 30), rng.randint(2, 9 if op == "×" else 30)
        a, b = (max(a, b), min(a, b)) if op == "-" else (a, b)  # answers stay non-negative
        text = f"What is {a} {op} {b}?"
        if text not in seen:
            seen.add(text)
            out.append(GoldPrompt(text, {"answer": prompt_answer(text), "task": "arithmetic"}))
    return out


def rlhf_prompts(split: str = "train") -> list[GoldPrompt]:
    """Built-in RLHF prompts; "heldout" shares no prompt or topic with "train"."""
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    heldout = split == "heldout"
    out = [GoldPrompt(t.format(topic), {"topic": topic}) for i, topic in enumerate(TOPICS)
           if (i % 4 == 3) == heldout for t in TOPIC_TEMPLATES]
    out += [GoldPrompt(t.format(person), {"topic": person}) for i, person in enumerate(PEOPLE)
            if (i % 3 == 2) == heldout for t in PERSON_TEMPLATES]
    out += [p for i, p in enumerate(_arithmetic()) if (i % 4 == 3) == heldout]
    return out


# ------------------------------------------------------------------ sampled preference pairs
def sample_responses(sampler: Sampler, params: Any, tokenizer: Any,
                     template: ChatTemplate | None, prompts: Sequence[str | Sequence[Message]],
                     k: int, rng: jax.Array, cfg: SamplingConfig | None = None
                     ) -> list[list[str]]:
    """`k` replies to each prompt, as text; depend only on (rng, the prompt's place).

    With a chat `template` prompts are rendered for generation; with None the text is continued."""
    cfg = cfg or SamplingConfig(max_new_tokens=48, temperature=1.0)
    stops = tuple(template.stop_ids(tokenizer)) if template else tuple(tokenizer.stop_ids)
    # A chat reply must end at the template's end-of-turn even if `cfg` only names <|eos|>.
    stops = tuple(dict.fromkeys((*cfg.stop_tokens, *stops)))
    cfg = dataclasses.replace(cfg, n=k, stop_tokens=stops, pad_id=tokenizer.pad_id)
    ids = []
    for prompt in prompts:
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        ids.append(template.render_for_generation(messages, tokenizer) if template
                   else [tokenizer.bos_id, *tokenizer.encode(prompt_text(messages))])
    rollout = sampler.generate(params, ids, rng, cfg)
    hidden = set(cfg.stop_tokens) | {cfg.pad_id}
    texts = [tokenizer.decode([int(t) for t in row[:n] if int(t) not in hidden]).strip()
             for row, n in zip(rollout.tokens, rollout.lengths)]
    return [texts[i * k:(i + 1) * k] for i in range(len(prompts))]


def build_preference_set(sampler: Sampler, params: Any, tokenizer: Any,
                         template: ChatTemplate | None, prompts: Sequence[GoldPrompt | str],
                         k: int, rng: jax.Array, labeler: GoldLabeler | None = None,
                         cfg: SamplingConfig | None = None, *, batch_prompts: int = 64,
                         label_rng: np.random.Generator | None = None) -> list[PreferencePair]:
    """The built-in preference set: `k` replies per prompt ranked by the gold judge, as pairs.

    Ties are dropped; `meta` gains `ranks` and clean `gold_chosen` / `gold_rejected` scores."""
    labeler = labeler or GoldLabeler()
    prompts = [p if isinstance(p, GoldPrompt) else GoldPrompt(p) for p in prompts]
    pairs: list[PreferencePair] = []
    for start in range(0, len(prompts), batch_prompts):
        chunk = prompts[start:start + batch_prompts]
        groups = sample_responses(sampler, params, tokenizer, template,
                                  [p.messages for p in chunk], k,
                                  jax.random.fold_in(rng, start), cfg)
        for prompt, group in zip(chunk, groups):
            scores = [labeler.score(prompt.text, r, prompt.meta) for r in group]
            order = labeler.rank(prompt.text, group, label_rng, prompt.meta)
            for pair in ranking_pairs(prompt.messages, group, order, dict(prompt.meta)):
                hi, lo = pair.meta["ranks"]
                chosen, rejected = scores[order[hi]], scores[order[lo]]
                if abs(chosen - rejected) >= 1e-9:
                    pairs.append(dataclasses.replace(pair, meta={
                        **pair.meta, "gold_chosen": chosen, "gold_rejected": rejected}))
    return pairs
