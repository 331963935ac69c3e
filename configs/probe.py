"""The probe section of a config (read by `llm_jax/trainers/probe.py`): knowledge probing."""

import ml_collections

from llm_jax.recipes.probes import ProbeSettings


def probe(**overrides) -> ml_collections.ConfigDict:
    defaults = ProbeSettings()
    return ml_collections.ConfigDict(dict(
        corpus=(),  # text files to make questions from; empty = the model's training text
        per_kind=100,  # questions of each kind (speaker, book, verse)
        arithmetic=0,  # and this many generated arithmetic questions (level 1)
        heldout_fraction=0.25,  # questions kept out of the refusal data, for evaluation
        samples=defaults.samples,  # answers sampled per question (K)
        temperature=defaults.temperature,
        top_k=defaults.top_k,
        top_p=defaults.top_p,
        max_new_tokens=defaults.max_new_tokens,
        # A question is known when at least `known_at` of its answers are right (its right
        # answer is kept), unknown at `unknown_at` or fewer (answered "I don't know", or with
        # a search call); in between it is left out.
        known_at=defaults.known_at,
        unknown_at=defaults.unknown_at,
        # At most this many "I don't know" conversations per kept answer (0 = every unknown
        # question's): refusals alone teach a model to refuse everything.
        refusal_ratio=defaults.refusal_ratio,
        seed=defaults.seed,
        build_index=False,  # index the corpus into <run>/index and answer with the search tool
        # With the search tool on: this many more train-split questions (who says a line,
        # which book a character is in), not probed, written as search conversations.
        search_practice=0,
        # What a search conversation searches for: "query" (`search: <the quoted line | the
        # character | the verse reference>`) or "question" (`search:` alone: the engine
        # searches with the user's question, so the model need not copy a query).
        search_query=defaults.search_query,
        baseline="",  # an earlier probe.jsonl: score refusals against its labels
    ) | overrides)
