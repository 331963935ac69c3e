"""What every math task is: a stream of `Problem`s and a scorer for completions.

`problem.meta` always carries `answer` and `task` (the task's name)."""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

from llm_jax.recipes.math.answers import check


@dataclasses.dataclass(frozen=True)
class Problem:
    """A prompt, its reference answer (text, e.g. "17" or "3/4") and free-form metadata."""

    prompt: str
    answer: str
    meta: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        # The reference answer travels in meta too: rewards receive meta, not Problems.
        object.__setattr__(self, "meta", {**self.meta, "answer": self.answer})


@runtime_checkable
class Task(Protocol):
    """A source of checkable problems."""

    name: str

    def problems(self) -> Iterator[Problem]:
        """The problems of this task's split, in a seeded order."""
        ...

    def score(self, completion: str, problem: Problem) -> float:
        """1.0 when the completion's final answer is right, else 0.0."""
        ...

    def is_correct(self, completion: str, problem: Problem) -> bool:
        ...


class AnswerTask(abc.ABC):
    """Base for tasks scored by comparing the extracted final answer with the reference."""

    name = "answer"
    checkable = True  # its replies can be checked against an answer

    @abc.abstractmethod
    def problems(self) -> Iterator[Problem]:
        """The task's problems, in a fixed order for a fixed seed."""

    def is_correct(self, completion: str, problem: Problem) -> bool:
        return check(completion, problem.answer).correct

    def score(self, completion: str, problem: Problem) -> float:
        return 1.0 if self.is_correct(completion, problem) else 0.0
