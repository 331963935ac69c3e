"""The gold judge: its preferences on a table of examples, seeded label noise, the built-in
prompt splits, and a preference set sampled from the tiny pretrained run."""

import jax
import numpy as np
import pytest

from llm_jax.recipes.gold import (
    GoldLabeler,
    build_preference_set,
    content_words,
    prompt_answer,
    repetition_share,
    rlhf_prompts,
    sample_responses,
)

SEA = "Write a sentence about the sea."
RAMBLING = "A garden with " + " ".join(f"flower{i}" for i in range(60)) + "."
# (prompt, meta, better, worse, the rule that decides)
TABLE = [
    ("What is 12 + 7?", {}, "12 + 7 = 19.\n#### 19", "12 + 7 = 18.\n#### 18", "correct"),
    ("How many legs do two cats have?", {"answer": "8"}, "Two cats have 8 legs.",
     "Two cats have 6 legs.", "correct"),
    ("What is 3 × 4?", {}, "It is 12, happy to help.", "It is 11, thank you.", "correct"),
    (SEA, {}, "The sea is deep and blue.", "I like eating cheese.", "topic"),
    ("Tell me about the moon.", {}, "The moon is bright tonight.",
     "The moon moon moon moon moon.", "repetition"),
    ("Tell me about the moon.", {}, "The moon is bright tonight.",
     "The moon is bright and the moon is bright and the moon is bright.", "repetition"),
    ("Describe a garden in a few words.", {}, "A quiet garden full of roses.", RAMBLING,
     "length"),
    ("Tell me about the river.", {}, "The river is long, thank you for asking.",
     "The river is long, I hope you enjoy it.", "polite"),
    ("Tell me about the river.", {}, "The river runs to the sea.",
     "Thank you, I am happy to help.", "topic"),
    (SEA, {}, "I like cheese cheese cheese.", "", "empty"),
    (SEA, {}, "No.", "   ", "empty"),
]


@pytest.mark.parametrize("prompt,meta,better,worse,rule", TABLE,
                         ids=[f"{row[-1]}-{i}" for i, row in enumerate(TABLE)])
def test_gold_preferences(prompt, meta, better, worse, rule):
    gold = GoldLabeler()
    assert gold.prefer(prompt, better, worse, meta) is True
    assert gold.prefer(prompt, worse, better, meta) is False
    a, b = gold.components(prompt, better, meta), gold.components(prompt, worse, meta)
    assert a[rule] > b[rule]
    assert gold.rank(prompt, [worse, better], meta=meta) == [1, 0]
    np.testing.assert_allclose(gold([prompt] * 2, [better, worse], [meta] * 2),
                               [a["total"], b["total"]], rtol=1e-6)


def test_rule_weights_by_hand():
    gold = GoldLabeler()
    c = gold.components("Tell me about the moon and the stars.", "The moon moon shines.")
    # content words {moon, star}: 1 of 2 used; words the moon moon shines: 1 of 3 repeats
    assert c["topic"] == pytest.approx(0.5) and c["repetition"] == pytest.approx(-1 / 3)
    assert c["correct"] == c["length"] == c["polite"] == c["empty"] == 0.0
    assert c["total"] == pytest.approx(0.5 - 1 / 3)
    assert gold.components("x", " ".join(["w"] * 3 + [f"v{i}" for i in range(57)]))[
        "length"] == pytest.approx(-0.5)   # 60 words, 20 over a 40-word budget
    assert GoldLabeler(word_budget=10).components(
        "x", "one two three four five six seven eight nine ten eleven twelve")["length"] == \
        pytest.approx(-0.2)
    assert gold.prefer("Tell me about the moon.", "The moon.", "The moon.") is None
    assert gold.components("x", " ") == {"correct": 0.0, "topic": 0.0, "repetition": 0.0,
                                         "length": 0.0, "polite": 0.0, "empty": -3.0,
                                         "total": -3.0}


def test_helpers():
    assert prompt_answer("What is 12 + 7?") == "19"
    assert prompt_answer("What is 6 × 7?") == "42"
    assert prompt_answer("What is 7 / 2?") is None
    assert prompt_answer("Is 3 + 4 more than 5 + 1?") is None
    assert prompt_answer("Tell me about the sea.") is None
    assert content_words("Write a sentence about the seas and rivers.") == {"sea", "river"}
    assert repetition_share("the the the") == 1.0 and repetition_share("a b c d") == 0.0


def test_label_noise_flips_the_configured_share_with_a_seed():
    prompt, good, bad = SEA, "The sea is calm.", "Cheese is nice."
    noisy = GoldLabeler(noise=0.2, seed=3)
    labels = np.array([noisy.prefer(prompt, good, bad) for _ in range(4000)])
    assert abs((~labels).mean() - 0.2) < 0.03   # ±0.03 is ~5 standard deviations
    again = GoldLabeler(noise=0.2, seed=3)
    assert [again.prefer(prompt, good, bad) for _ in range(4000)] == labels.tolist()
    other = GoldLabeler(noise=0.2, seed=4)
    assert [other.prefer(prompt, good, bad) for _ in range(4000)] != labels.tolist()
    assert all(GoldLabeler().prefer(prompt, good, bad) for _ in range(100))
    # rank: each adjacent pair of the clean order is swapped with probability `noise`
    responses = ["The sea is calm.", "Cheese is nice.", ""]
    assert GoldLabeler().rank(prompt, responses) == [0, 1, 2]
    rng = np.random.default_rng(0)
    orders = [GoldLabeler(noise=0.3).rank(prompt, responses, rng) for _ in range(3000)]
    assert abs(np.mean([o[0] != 0 for o in orders]) - 0.3) < 0.04


def test_builtin_prompts_splits_never_overlap():
    train, heldout = rlhf_prompts("train"), rlhf_prompts("heldout")
    assert len(train) >= 40 and len(heldout) >= 15
    assert not {p.text for p in train} & {p.text for p in heldout}
    assert not {p.meta.get("topic") for p in train} & {p.meta.get("topic") for p in heldout} - \
        {None}
    assert rlhf_prompts("train") == train   # deterministic
    assert "Tell me about Elizabeth Bennet." in {p.text for p in train}
    sums = [p for p in train if p.meta.get("task") == "arithmetic"]
    assert sums and all(prompt_answer(p.text) == p.meta["answer"] for p in sums)


@pytest.fixture(scope="module")
def tiny_model(tiny_pretrained_run):
    from llm_jax.checkpoints.sources import load_model
    from llm_jax.generate.sampler import Sampler

    model, params, tokenizer, _ = load_model(tiny_pretrained_run)
    return Sampler(model), params, tokenizer


def test_build_preference_set_on_the_tiny_run(tiny_model):
    from llm_jax.generate.sampler import SamplingConfig

    sampler, params, tokenizer = tiny_model
    prompts = rlhf_prompts("train")[:4]
    cfg = SamplingConfig(max_new_tokens=12, temperature=1.0)
    # A 4-step model writes noise that no topic or answer rule tells apart (all ties, which
    # are dropped); a 2-word budget lets the length rule separate its replies.
    gold = GoldLabeler(word_budget=2)
    pairs = build_preference_set(sampler, params, tokenizer, None, prompts, 4,
                                 jax.random.PRNGKey(0), gold, cfg)
    assert pairs and len(pairs) <= 4 * 6
    for pair in pairs:
        text = pair.prompt_messages[-1]["content"]
        assert gold.score(text, pair.chosen) > gold.score(text, pair.rejected)
        assert pair.meta["gold_chosen"] == gold.score(text, pair.chosen)
    again = build_preference_set(sampler, params, tokenizer, None, prompts, 4,
                                 jax.random.PRNGKey(0), gold, cfg)
    assert again == pairs
    # The replies are the sampler's: k per prompt, the same for the same key (the first
    # chunk of prompts samples with fold_in(rng, 0)).
    groups = sample_responses(sampler, params, tokenizer, None, [p.text for p in prompts], 4,
                              jax.random.fold_in(jax.random.PRNGKey(0), 0), cfg)
    assert [len(g) for g in groups] == [4] * 4
    assert {pair.chosen for pair in pairs} <= {r for g in groups for r in g}
