"""Task sources (generator, reasoning-gym, GSM8K JSONL): problems, scoring, disjoint splits."""

import itertools
import json

import pytest

from llm_jax.data.errors import DataError
from llm_jax.data.splits import heldout_position, normalize_question, select, shared
from llm_jax.recipes.math.arithmetic import Level
from llm_jax.recipes.math.sources import (
    ArithmeticTask,
    Gsm8kTask,
    ReasoningGymTask,
    computation_key,
    make_task,
    stratified_heldout,
)
from llm_jax.recipes.math.task import Problem, Task


def take(task, n):
    return list(itertools.islice(task.problems(), n))


def test_split_position_is_a_stable_hash_of_the_normalized_question():
    assert normalize_question("  What   IS 3 + 5? ") == "what is 3 + 5"
    assert heldout_position("what is 3 + 5") == pytest.approx(0.36284240913693927, abs=0)
    problems = [Problem(q, "8") for q in ("What is 3 + 5?", "what is 3 + 5", "What is 3+5?")]
    assert [p.prompt for p in select(problems, "all", 0.1)] == ["What is 3 + 5?", "What is 3+5?"]


def test_arithmetic_task_problems_and_scoring():
    task = ArithmeticTask(level=2, seed=1, split="heldout")
    assert isinstance(task, Task)
    first = take(task, 2)
    assert [p.prompt for p in first] == ["Calculate 49 + 55.", "What is 98 - 38?"]
    assert first[0].answer == "104"
    assert first[0].meta == {"task": "arithmetic", "level": 2, "answer": "104",
                             "solution": "49 + 55\nunits: 9 + 5 = 14, write 4, carry 1\n"
                                         "tens: 4 + 5 + 1 = 10, write 0, carry 1\n"
                                         "hundreds: carry 1, write 1\n49 + 55 = 104\n#### 104",
                             "computation": "49 + 55 = 104"}
    plain = ArithmeticTask(level=2, seed=1, split="heldout", working="plain")
    assert take(plain, 1)[0].meta["solution"] == "49 + 55 = 104\n#### 104"
    assert task.score(first[0].meta["solution"], first[0]) == 1.0
    assert task.score("49 + 55 = 105\n#### 105", first[0]) == 0.0
    assert task.score("49 + 55 is 104 or 105", first[0]) == 0.0  # no answer, no credit


@pytest.mark.parametrize("level", [1, 4, [3, 5]])
def test_arithmetic_train_and_heldout_never_share_a_problem(level):
    train = take(ArithmeticTask(level=level, seed=0, split="train"), 3000)
    size = 100 if level == 1 else 200
    heldout = list(ArithmeticTask(level=level, seed=0, split="heldout", size=size).problems())
    assert len(heldout) == size
    assert len({computation_key(p) for p in heldout}) == size  # no repeats within the split
    assert not shared(train, heldout)
    assert not shared(train, heldout, key=computation_key)  # nor the same sums re-worded
    # The check has teeth: the same stream unsplit does contain held-out computations.
    everything = take(ArithmeticTask(level=level, seed=0, split="all"), 3000)
    assert shared(everything, heldout, key=computation_key)


def test_a_level_too_small_for_the_size_asked_says_so():
    with pytest.raises(ValueError, match="distinct heldout problems; asked for 50"):
        list(ArithmeticTask(level=Level(digits=1, n_ops=1), split="heldout",
                            size=50).problems())
    with pytest.raises(ValueError, match="unknown arithmetic level 0"):
        ArithmeticTask(level=0)


def test_reasoning_gym_gsm_symbolic_splits_and_its_own_verifier():
    train = list(ReasoningGymTask("gsm_symbolic", size=40, seed=3, split="train",
                                  heldout_fraction=0.3).problems())
    heldout_task = ReasoningGymTask("gsm_symbolic", size=40, seed=3, split="heldout",
                                    heldout_fraction=0.3)
    heldout = list(heldout_task.problems())
    assert train and heldout and not shared(train, heldout)
    problem = heldout[0]
    assert problem.meta["task"] == "reasoning_gym:gsm_symbolic"
    entry = heldout_task.dataset[problem.meta["index"]]
    assert (problem.prompt, problem.answer) == (entry["question"], str(entry["answer"]))
    assert heldout_task.is_correct(f"Working...\n#### {problem.answer}", problem)
    assert heldout_task.score(f"#### {int(problem.answer) + 1}", problem) == 0.0
    assert heldout_task.score("I am not sure.", problem) == 0.0


def test_reasoning_gym_other_arithmetic_generator():
    task = make_task("reasoning_gym", dataset="chain_sum", size=5, seed=0, split="all")
    problems = list(task.problems())
    assert len(problems) == 5
    assert task.is_correct(f"The answer is {problems[0].answer}.", problems[0])


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_gsm8k_jsonl_loader_dedupes_excludes_and_names_bad_lines(tmp_path):
    rows = [{"question": "Ann has 3 apples and buys 4. How many?",
             "answer": "She has 3 + 4 = <<3+4=7>>7.\n#### 7"},
            {"question": "A shirt costs $1,200. Two cost?",
             "answer": "2 * 1200 = 2400\n#### 2,400"},
            {"question": "ann has 3 apples and buys 4.  How many", "answer": "#### 7"},  # dup
            {"question": "Owed 5, paid 8. Balance?", "answer": "5 - 8 = -3\n#### -3"}]
    train_file = _write_jsonl(tmp_path / "train.jsonl", rows)
    test_file = _write_jsonl(tmp_path / "test.jsonl", [rows[3]])
    test = list(Gsm8kTask(test_file).problems())
    train = list(Gsm8kTask([train_file], exclude=test).problems())
    assert [(p.answer, p.meta["solution"]) for p in train] == [
        ("7", "She has 3 + 4 = <<3+4=7>>7."), ("2400", "2 * 1200 = 2400")]
    assert not shared(train, test)
    assert Gsm8kTask(train_file).is_correct("so 2,400 dollars\n#### 2400", train[1])

    bad = _write_jsonl(tmp_path / "bad.jsonl", [rows[0], rows[1], {"question": "Q?",
                                                                   "answer": "#### seven"}])
    with pytest.raises(DataError, match=r"bad\.jsonl:3: field 'answer' must end with '#### N' "
                                        r"\(a number\), got '#### seven'"):
        Gsm8kTask(bad)
    missing = _write_jsonl(tmp_path / "missing.jsonl", [{"answer": "#### 1"}])
    with pytest.raises(DataError, match=r"missing\.jsonl:1: field 'question' must be"):
        Gsm8kTask(missing)


def test_make_task_rejects_unknown_sources():
    with pytest.raises(ValueError, match="unknown math task source 'mathz'"):
        make_task("mathz")


def test_stratified_heldout_has_equal_counts_per_level_and_marks_report_levels():
    problems = stratified_heldout([1, 2], 100, seed=0, heldout_fraction=0.1)
    assert [p.meta["level"] for p in problems] == [1] * 50 + [2] * 50
    assert len({p.meta["computation"] for p in problems}) == 100
    train = take(ArithmeticTask(level=[1, 2], seed=0, split="train"), 5000)
    assert not shared(train, problems, key=computation_key)
    side = stratified_heldout([4, 5], 0, seed=0, heldout_fraction=0.1, report=True,
                              per_level=7)
    assert [p.meta["level"] for p in side] == [4] * 7 + [5] * 7
    assert all(p.meta["report_only"] for p in side)
    # fewer problems than levels: still one from each
    assert [p.meta["level"] for p in stratified_heldout([1, 2], 1, seed=0,
                                                        heldout_fraction=0.1)] == [1, 2]


def test_the_rl_task_reports_side_levels_with_their_own_count():
    from configs import rl
    from llm_jax.recipes.math.schedule import make_tasks

    def levels(**task):
        _, heldout = make_tasks(rl.task(levels=(1, 2), report_levels=(4,), eval_problems=40,
                                        **task))
        return [(p.meta["level"], bool(p.meta.get("report_only"))) for p in heldout]

    assert levels() == [(1, False)] * 20 + [(2, False)] * 20 + [(4, True)] * 20
    assert levels(report_problems=3) == [(1, False)] * 20 + [(2, False)] * 20 + [(4, True)] * 3
