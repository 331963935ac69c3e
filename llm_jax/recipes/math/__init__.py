"""Math tasks for RL on verifiable answers: our arithmetic, reasoning-gym and GSM8K files."""

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
