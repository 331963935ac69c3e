"""Generated pretraining text: its share of the mix, and no held-out problem in it."""

import pytest

from llm_jax.data.index import memory_index
from llm_jax.recipes.generated import mix_generated
from llm_jax.recipes.math.sources import stratified_heldout
from llm_jax.recipes.sft_mixture import build_mixture

PROSE = ["It is a truth universally acknowledged. " * (20 + i % 7) for i in range(120)]


@pytest.mark.parametrize("weight", [0.1, 0.3, 0.5])
def test_the_mix_respects_the_weight_in_characters(weight):
    corpus = memory_index(PROSE)
    mixed = mix_generated(corpus, {"arithmetic": weight}, levels=(1, 2), seed=0,
                          heldout_fraction=0.1)
    assert [mixed[i] for i in range(len(corpus))] == PROSE  # the corpus first, untouched
    generated = [mixed[i] for i in range(len(corpus), len(mixed))]
    assert all(doc.startswith("Problem: ") for doc in generated)
    total = sum(map(len, PROSE)) + sum(map(len, generated))
    share = sum(map(len, generated)) / total
    assert share == pytest.approx(weight, abs=0.02)  # within one document's size
    assert mix_generated(corpus, {"arithmetic": 0.0}, levels=(1,), seed=0,
                         heldout_fraction=0.1) is corpus


def test_bad_weights_are_refused():
    corpus = memory_index(PROSE)
    with pytest.raises(ValueError, match="unknown generated data"):
        mix_generated(corpus, {"poems": 0.1}, levels=(1,), seed=0, heldout_fraction=0.1)
    with pytest.raises(ValueError, match="sum below 1"):
        mix_generated(corpus, {"arithmetic": 1.0}, levels=(1,), seed=0, heldout_fraction=0.1)


def test_no_heldout_computation_in_generated_pretraining_or_sft_text():
    levels = (1, 2, 4)
    heldout = stratified_heldout(levels, 150, seed=0, heldout_fraction=0.1)
    corpus = memory_index(PROSE)
    mixed = mix_generated(corpus, {"arithmetic": 0.5}, levels=levels, seed=0,
                          heldout_fraction=0.1)
    pretraining = "\n\n".join(mixed[i] for i in range(len(corpus), len(mixed)))
    train, _ = build_mixture(0, size=1500, eval_size=5, name="Q", maker="M", levels=levels,
                             weights={"arithmetic": 1.0})
    sft = {r["messages"][1]["content"] for r in train}
    # A problem's whole worked solution (its steps with their numbers) names its computation.
    # (A short one may still appear as the tail of a longer chain: "9 + 2 = 11 ; 11 - 1 = 10"
    # holds the table facts of "11 - 1 = 10", which is another computation.)
    leaks = [p.prompt for p in heldout if f"Solution:\n{p.meta['solution']}" in pretraining]
    assert not leaks, leaks[:3]
    leaks = [p.prompt for p in heldout if p.meta["solution"] in sft]
    assert not leaks, leaks[:3]
    # The check has teeth: training problems' solutions are found the same way.
    from llm_jax.recipes.math.sources import ArithmeticTask

    train_problems = ArithmeticTask(level=list(levels), seed=0, split="train").problems()
    seen = [next(train_problems) for _ in range(2000)]
    assert any(f"Solution:\n{p.meta['solution']}" in pretraining for p in seen)
    assert any(p.meta["solution"] in sft for p in seen)
