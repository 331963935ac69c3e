"""Math tasks for RL on verifiable answers: problems with a checkable answer, and their scoring.

Sources: the project's arithmetic generator (`arithmetic`), reasoning-gym generators and
GSM8K-format JSONL files. `answers` extracts and compares final answers.
"""
