"""The built-in SFT mixture: seeded, disjoint from its held-out set, every record renders with
an assistant turn, and every answer is right (recomputed here)."""

import re

import pytest

from llm_jax.data.chat import content_parts, render_for_training
from llm_jax.data.conversations import check_messages
from llm_jax.data.tokenizer import Tokenizer
from llm_jax.generate.calculator import evaluate
from llm_jax.recipes.math.answers import extract_answer
from llm_jax.recipes.sft_mixture import build_mixture
from llm_jax.recipes.sft_passages import load_books, title_of
from llm_jax.recipes.sft_people import TRAIN_QUESTIONS, identity_eval_questions

NAME, MAKER = "Quill", "the Lantern Lab"
STEP = re.compile(r"(\d+) ([-+*/]) (\d+) = (\d+)$")


@pytest.fixture(scope="module")
def books(test_corpus):
    return load_books([test_corpus / "emma.txt", test_corpus / "kjv.txt"])


@pytest.fixture(scope="module")
def mixture(books):
    return build_mixture(3, size=150, eval_size=6, name=NAME, maker=MAKER, books=books)


def _prompt(record):
    return record["messages"][0]["content"]


def _reply(record):
    return "".join(p["text"] for p in content_parts(record["messages"][-1]["content"]))


def test_same_seed_same_mixture_other_seed_differs(books, mixture):
    again = build_mixture(3, size=150, eval_size=6, name=NAME, maker=MAKER, books=books)
    assert again == mixture
    other = build_mixture(4, size=150, eval_size=6, name=NAME, maker=MAKER, books=books)
    assert [_prompt(r) for r in other[0]] != [_prompt(r) for r in mixture[0]]


def test_sizes_kinds_and_no_train_heldout_overlap(mixture):
    train, heldout = mixture
    kinds = {"identity", "refusal", "arithmetic", "gsm_symbolic", "calculator", "continue",
             "which_book"}
    assert {r["kind"] for r in train} == kinds and {r["kind"] for r in heldout} == kinds
    assert abs(len(train) - 150) <= 3
    assert not {_prompt(r) for r in train} & {_prompt(r) for r in heldout}
    # Identity: held-out phrasings are never trained on, and the held-out set uses only them.
    assert not set(identity_eval_questions()) & set(TRAIN_QUESTIONS)
    assert {_prompt(r) for r in heldout if r["kind"] == "identity"} <= set(
        identity_eval_questions())
    assert not {_prompt(r) for r in train} & set(identity_eval_questions())


def test_every_record_renders_with_a_trained_assistant_turn(tmp_path, austen_text, mixture):
    tok = Tokenizer.train([austen_text[:200_000]], 512, tmp_path / "t.model")
    for record in mixture[0] + mixture[1]:
        messages = check_messages(record["messages"])
        ids, mask = render_for_training(messages, tok)
        assert sum(mask) > 0 and len(ids) == len(mask)


def test_math_answers_end_with_the_correct_number(mixture):
    for record in mixture[0] + mixture[1]:
        if record["kind"] not in ("arithmetic", "gsm_symbolic", "calculator"):
            continue
        reply = _reply(record)
        last = reply.splitlines()[-1]
        assert last == f"#### {record['answer']}", reply
        if record["kind"] == "arithmetic":
            values = []
            for line in reply.splitlines()[:-1]:
                step = STEP.search(line)
                if step is None:  # a column line or a step's header: see test_column_working
                    continue
                a, op, b, c = step.groups()
                assert evaluate(f"{a} {op} {b}") == c, line
                values.append(c)
            assert values[-1] == record["answer"]
            bare = re.fullmatch(r"(?:What is|Compute|Calculate) (.+?)[?.]", _prompt(record))
            if bare:
                assert evaluate(bare.group(1)) == record["answer"]
        if record["kind"] == "calculator":
            call, output = [p["text"] for p in record["messages"][-1]["content"][1:3]]
            assert evaluate(call) == output == record["answer"]


def test_calculator_share_hands_each_operation_to_the_calculator(tmp_path, austen_text, books):
    mixed, _ = build_mixture(5, size=400, eval_size=6, name=NAME, maker=MAKER, books=books,
                             levels=(1, 2, 4), calculator=0.25)
    math = [r for r in mixed if r["kind"] == "arithmetic"]
    called = [r for r in math if not isinstance(r["messages"][-1]["content"], str)]
    assert 0.13 < len(called) / len(math) < 0.37  # 0.25 of ~120, within 2.8 sigma
    tok = Tokenizer.train([austen_text[:200_000]], 512, tmp_path / "t.model")
    for record in called:
        parts = record["messages"][-1]["content"]
        calls = [p["text"] for p in parts if p["type"] == "python"]
        outputs = [p["text"] for p in parts if p["type"] == "output"]
        # each call is right, and each later call starts from the previous output
        assert [evaluate(c) for c in calls] == outputs and outputs[-1] == record["answer"]
        assert all(c.startswith(o + " ") for o, c in zip(outputs, calls[1:]))
        assert _reply(record).endswith(f"\n#### {record['answer']}")
        # the forced outputs are never trained on: mask 0 on exactly their tokens
        ids, mask = render_for_training(check_messages(record["messages"]), tok)
        start, end = tok.special_id("<|output_start|>"), tok.special_id("<|output_end|>")
        opens = [i for i, token in enumerate(ids) if token == start]
        assert len(opens) == len(outputs)
        for i in opens:
            inside = mask[i + 1:ids.index(end, i)]
            assert inside and not any(inside)
        assert sum(mask) > 0


def test_gsm_symbolic_answers_match_the_generator(mixture):
    import reasoning_gym

    entries = {e["question"]: str(e["answer"]) for e in
               reasoning_gym.create_dataset("gsm_symbolic", size=300, seed=3)}
    records = [r for r in mixture[0] + mixture[1] if r["kind"] == "gsm_symbolic"]
    assert records and all(entries[_prompt(r)] == r["answer"] for r in records)


def test_answer_first_states_the_answer_before_the_same_steps(books, mixture):
    first, _ = build_mixture(3, size=150, eval_size=6, name=NAME, maker=MAKER, books=books,
                             answer_first=True)
    thinking = {_prompt(r): _reply(r) for r in mixture[0] if r["kind"] == "arithmetic"}
    checked = 0
    for record in first:
        if record["kind"] != "arithmetic":
            continue
        reply, answer = _reply(record), record["answer"]
        assert reply.startswith(f"The answer is {answer}.\n") and "####" not in reply
        # the same working, without the answer line that closes the step-by-step reply
        steps = thinking[_prompt(record)].removesuffix(f"\n#### {answer}")
        assert reply.removeprefix(f"The answer is {answer}.\n") == steps
        assert extract_answer(reply) == answer  # the answer stated first is the one scored
        checked += 1
    assert checked == len(thinking) > 10


def test_answer_first_share_mixes_the_two_styles(books, mixture):
    mixed, _ = build_mixture(3, size=400, eval_size=6, name=NAME, maker=MAKER, books=books,
                             answer_first=0.3)
    math = [r for r in mixed if r["kind"] == "arithmetic"]
    first = [r for r in math if _reply(r).startswith("The answer is ")]
    # a binomial share: 0.3 of ~120 replies lies within 0.17..0.43 except by >2.8 sigma
    assert 0.17 < len(first) / len(math) < 0.43
    for record in math:  # either style states the record's answer, scored the same way
        assert extract_answer(_reply(record)) == record["answer"]
        if record not in first:
            assert _reply(record).endswith(f"\n#### {record['answer']}")
    # the end points draw nothing: share 0 and 1 are the all-or-none mixtures exactly
    none, _ = build_mixture(3, size=150, eval_size=6, name=NAME, maker=MAKER, books=books,
                            answer_first=0.0)
    assert [_reply(r) for r in none] == [_reply(r) for r in mixture[0]]


def test_answer_only_share_gives_the_answer_line_alone(books, mixture):
    mixed, _ = build_mixture(3, size=400, eval_size=6, name=NAME, maker=MAKER, books=books,
                             answer_only=0.4)
    math = [r for r in mixed if r["kind"] == "arithmetic"]
    alone = [r for r in math if _reply(r) == f"#### {r['answer']}"]
    # a binomial share: 0.4 of ~120 replies lies within 0.26..0.54 except by >3 sigma
    assert 0.26 < len(alone) / len(math) < 0.54
    for record in math:
        if record not in alone:  # the others are worked as before, the answer line last
            assert _reply(record).count("\n") >= 2
            assert _reply(record).endswith(f"\n#### {record['answer']}")
    everything, _ = build_mixture(3, size=150, eval_size=6, name=NAME, maker=MAKER,
                                  books=books, answer_only=1.0)
    assert all(_reply(r) == f"#### {r['answer']}" for r in everything
               if r["kind"] == "arithmetic")


def test_identity_refusal_and_passage_answers(books, mixture):
    for record in mixture[0] + mixture[1]:
        reply = _reply(record)
        if record["kind"] == "identity":
            assert NAME in reply and MAKER in reply
        elif record["kind"] == "refusal":
            assert "don't know" in reply
        elif record["kind"] == "which_book":
            passage = _prompt(record).split("\n\n", 1)[1]
            assert reply == f"This passage is from {record['answer']}."
            assert all(line in books[record["answer"]] for line in passage.splitlines())
        elif record["kind"] == "continue":
            head = _prompt(record).split("\n\n", 1)[1]
            whole = f"{head} {reply}"
            assert any(all(line in text for line in whole.splitlines())
                       for text in books.values())
    assert title_of("pride_and_prejudice.txt") == "Pride and Prejudice"
    assert title_of("kjv.txt") == "the King James Bible"
