"""Training stages. Each is a short `main(config, run_dir) -> final metrics`, named by the
experiment's required `config.stage`."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

import ml_collections

from llm_jax.errors import ConfigError


def _lazy(module: str) -> Callable[[ml_collections.ConfigDict, Path], dict]:
    # Imported on use, so `llm-jax --help` stays fast.
    return lambda config, run_dir: importlib.import_module(
        f"llm_jax.trainers.{module}").main(config, run_dir)


# Stage name (config.stage) -> trainer.
TRAINERS: dict[str, Callable] = {name: _lazy(name) for name in ("pretrain", "sft", "rl", "probe")}
TRAINERS |= {name: _lazy("pairwise") for name in ("reward_model", "dpo")}


def stage_of(config: ml_collections.ConfigDict) -> str:
    """The experiment's `config.stage`, checked: every experiment says which trainer runs it."""
    stage = config.get("stage", "")
    if not stage:
        raise ConfigError(f"config.stage is not set; an experiment names its trainer, one of: "
                          f"{', '.join(TRAINERS)}")
    if stage not in TRAINERS:
        raise ConfigError(f"config.stage={stage!r}; known stages: {', '.join(TRAINERS)}")
    return stage
