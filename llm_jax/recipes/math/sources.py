"""The three sources of math problems, each a `Task` with disjoint train / held-out splits."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from llm_jax.data.records import Record, read_records
from llm_jax.data.splits import check_split, select
from llm_jax.recipes.math import arithmetic
from llm_jax.recipes.math.answers import extract_answer
from llm_jax.recipes.math.task import AnswerTask, Problem

# reasoning-gym generators whose answers are numbers the shared extractor and verifier read.
GYM_ARITHMETIC = ("gsm_symbolic", "basic_arithmetic", "chain_sum", "products",
                  "decimal_arithmetic", "leg_counting")
EXHAUSTED_AFTER = 2000  # consecutive repeats before a sized draw gives up on a small level


def computation_key(problem: Problem) -> str:
    """The arithmetic a generated problem asks for: the same sums told as a different story
    (or "What is" vs "Compute") are the same problem, so they may not straddle the split."""
    return problem.meta["computation"]


class ArithmeticTask(AnswerTask):
    """Problems from our generator at one level or several; `size=None`: endless."""

    name = "arithmetic"

    def __init__(self, level: int | arithmetic.Level | Sequence[int | arithmetic.Level] = 1,
                 seed: int = 0, split: str = "train", size: int | None = None,
                 heldout_fraction: float = 0.1, working: str = "column"):
        check_split(split, heldout_fraction)
        if working not in arithmetic.WORKINGS:
            raise ValueError(f"working={working!r}; choose from {arithmetic.WORKINGS}")
        self.working = working
        levels = list(level) if isinstance(level, list | tuple) else [level]
        for x in levels:
            arithmetic.resolve_level(x)  # a bad level fails here, not at the first draw
        self.levels = levels
        self.seed, self.split, self.size = seed, split, size
        self.heldout_fraction = heldout_fraction

    def _draw(self, rng: random.Random) -> Problem:
        level = rng.choice(self.levels)
        p = arithmetic.generate_problem(rng, level)
        return Problem(p.question, str(p.answer), {
            "task": self.name, "level": level if isinstance(level, int) else repr(level),
            "solution": p.worked_solution(self.working), "computation": p.computation})

    def _stream(self) -> Iterator[Problem]:
        rng = random.Random(self.seed)
        while True:
            yield self._draw(rng)

    def problems(self) -> Iterator[Problem]:
        chosen = select(self._stream(), self.split, self.heldout_fraction,
                        key=computation_key, dedupe=False)
        if self.size is None:
            yield from chosen
            return
        # Dedupe here rather than in select(): a level with few distinct problems must fail
        # with a message, not spin forever looking for one more.
        seen: set[str] = set()
        misses = 0
        for problem in chosen:
            key = computation_key(problem)
            if key in seen:
                misses += 1
                if misses >= EXHAUSTED_AFTER:
                    raise ValueError(
                        f"arithmetic level(s) {self.levels} have only about {len(seen)} distinct "
                        f"{self.split} problems; asked for {self.size}")
                continue
            misses = 0
            seen.add(key)
            yield problem
            if len(seen) == self.size:
                return


def stratified_heldout(levels, total: int, *, seed: int, heldout_fraction: float,
                       report: bool = False, per_level: int | None = None) -> list[Problem]:
    """`total` held-out arithmetic problems, level by level; `report`: report-only."""
    levels = list(levels)
    if not levels:
        return []
    per_level = max(total // len(levels), 1) if per_level is None else per_level
    problems = []
    for level in levels:
        for p in ArithmeticTask(level=[level], split="heldout", size=per_level, seed=seed,
                                heldout_fraction=heldout_fraction).problems():
            problems.append(Problem(p.prompt, p.answer, {**p.meta, "report_only": True})
                            if report else p)
    return problems


class ReasoningGymTask(AnswerTask):
    """A reasoning-gym generator (e.g. `gsm_symbolic`), scored by the generator's own verifier."""

    def __init__(self, dataset: str = "gsm_symbolic", size: int = 1000, seed: int = 0,
                 split: str = "train", heldout_fraction: float = 0.1, **config: Any):
        import reasoning_gym

        check_split(split, heldout_fraction)
        self.name = f"reasoning_gym:{dataset}"
        self.split, self.heldout_fraction = split, heldout_fraction
        self.dataset = reasoning_gym.create_dataset(dataset, size=size, seed=seed, **config)

    def problems(self) -> Iterator[Problem]:
        def all_problems():
            for index, entry in enumerate(self.dataset):
                yield Problem(entry["question"], str(entry["answer"]), {
                    "task": self.name, "index": index,
                    "difficulty": entry["metadata"].get("difficulty")})

        return select(all_problems(), self.split, self.heldout_fraction)

    def is_correct(self, completion: str, problem: Problem) -> bool:
        # Our extractor finds the answer; the generator's verifier judges it (it knows when the
        # form matters, e.g. a fraction in lowest terms).
        answer = extract_answer(completion)
        if answer is None:
            return False
        entry = self.dataset[problem.meta["index"]]
        return self.dataset.score_answer(answer, entry) >= 1.0


def gsm8k_record(record: Record) -> Problem:
    """Validator for a GSM8K-format line: `question` text, `answer` ending `#### N`."""
    question, answer = record.get("question"), record.get("answer")
    if not isinstance(question, str) or not question.strip():
        raise ValueError("field 'question' must be non-empty text")
    if not isinstance(answer, str) or "####" not in answer:
        raise ValueError("field 'answer' must be text ending '#### N'")
    final = extract_answer(answer)
    if final is None:
        tail = answer.rsplit("####", 1)[1].strip()[:40]
        raise ValueError(f"field 'answer' must end with '#### N' (a number), got '#### {tail}'")
    return Problem(question.strip(), final, {
        "task": "gsm8k", "solution": answer.rsplit("####", 1)[0].strip()})


class Gsm8kTask(AnswerTask):
    """GSM8K-format JSONL problems in file order; questions in `exclude` are dropped."""

    name = "gsm8k"

    def __init__(self, paths: Sequence[str] | str, split: str = "all",
                 heldout_fraction: float = 0.1, exclude: Iterable[Problem] = ()):
        check_split(split, heldout_fraction)
        paths = [paths] if isinstance(paths, str) else list(paths)
        self.split, self.heldout_fraction = split, heldout_fraction
        self._problems = list(read_records(paths, validate=gsm8k_record))
        self._exclude = list(exclude)

    def problems(self) -> Iterator[Problem]:
        return select(self._problems, self.split, self.heldout_fraction, exclude=self._exclude)


TASKS = {"arithmetic": ArithmeticTask, "reasoning_gym": ReasoningGymTask, "gsm8k": Gsm8kTask}


def make_task(source: str, **kwargs: Any) -> AnswerTask:
    """A task by source name ("arithmetic", "reasoning_gym", "gsm8k"), e.g. from a config."""
    if source not in TASKS:
        raise ValueError(f"unknown math task source {source!r}; choose from {sorted(TASKS)}")
    return TASKS[source](**kwargs)
