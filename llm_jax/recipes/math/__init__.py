"""Math tasks for RL on verifiable answers: problems with a checkable answer, and their scoring.

Sources: the project's arithmetic generator (`arithmetic`, wrapped by `ArithmeticTask`),
reasoning-gym generators (`ReasoningGymTask`) and GSM8K-format JSONL files (`Gsm8kTask`).
`answers` extracts and compares final answers; `splits` keeps train and held-out apart.
"""

from llm_jax.recipes.math.answers import AnswerCheck, check, extract_answer, is_equivalent
from llm_jax.recipes.math.sources import (
    GYM_ARITHMETIC,
    ArithmeticTask,
    Gsm8kTask,
    ReasoningGymTask,
    make_task,
)
from llm_jax.recipes.math.task import AnswerTask, Problem, Task

__all__ = ["GYM_ARITHMETIC", "AnswerCheck", "AnswerTask", "ArithmeticTask", "Gsm8kTask",
           "Problem", "ReasoningGymTask", "Task", "check", "extract_answer", "is_equivalent",
           "make_task"]
