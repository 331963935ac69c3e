"""The same sweep declaration as a W&B sweep: its config, and the agent's trial command.

Trials/full grids → `grid`, `add.random` → `random` (W&B draws its own values), `add.bayes` →
`bayes`. Parameters are named `config.<key>`, so the agent passes `--config.<key>=<value>`."""

from __future__ import annotations

import itertools
from typing import Any

from llm_jax.errors import ConfigError
from llm_jax.sweep.space import (
    BayesSearch,
    Choice,
    IntUniform,
    LogUniform,
    Points,
    RandomSearch,
    SweepPlan,
    Uniform,
)

CONFIG_FILE = "wandb_sweep.yaml"


def _parameter(value: Any) -> dict:
    if isinstance(value, LogUniform):
        return {"distribution": "log_uniform_values", "min": value.low, "max": value.high}
    if isinstance(value, Uniform):
        return {"distribution": "uniform", "min": value.low, "max": value.high}
    if isinstance(value, IntUniform):
        return {"distribution": "int_uniform", "min": value.low, "max": value.high}
    if isinstance(value, Choice):
        return {"values": [_plain(v) for v in value.values]}
    return {"value": _plain(value)}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _grid_parameters(block: Points) -> dict:
    keys = list(block.points[0])
    if any(list(p) != keys for p in block.points):
        raise ConfigError("a W&B grid needs every trial to set the same keys")
    axes = {k: list(dict.fromkeys(_hashable(p[k]) for p in block.points)) for k in keys}
    product = {tuple(combo) for combo in itertools.product(*axes.values())}
    given = {tuple(_hashable(p[k]) for k in keys) for p in block.points}
    if product != given or len(given) != len(block.points):
        raise ConfigError("these trials are not a full grid, which is all a W&B grid sweep "
                          "can express; declare them with add.grid or run them locally")
    return {f"config.{k}": {"values": [_plain(v) for v in values]} for k, values in axes.items()}


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def wandb_sweep_config(plan: SweepPlan, *, metric: str | None = None,
                       maximize: bool = False) -> dict:
    """The sweep config dict `wandb sweep` (or `wandb.sweep`) takes."""
    blocks = plan.declaration.blocks
    if len(blocks) != 1:
        raise ConfigError(f"a W&B sweep runs one search; {plan.spec}'s sweep() declares "
                          f"{len(blocks)} (add / add.grid / add.random / add.bayes calls)")
    block = blocks[0]
    config: dict[str, Any] = {"name": plan.name, "program": plan.spec.partition(":")[0]}
    if isinstance(block, Points):
        config["method"] = "grid"
        config["parameters"] = _grid_parameters(block)
    elif isinstance(block, RandomSearch):
        config["method"] = "random"
        config["run_cap"] = block.n
        config["parameters"] = {f"config.{k}": _parameter(v) for k, v in block.space.items()}
    elif isinstance(block, BayesSearch):
        config["method"] = "bayes"
        config["run_cap"] = block.n
        config["parameters"] = {f"config.{k}": _parameter(v) for k, v in block.space.items()}
        metric, maximize = block.objective, block.direction == "maximize"
    if metric:
        config["metric"] = {"name": metric, "goal": "maximize" if maximize else "minimize"}
    config["command"] = ["${env}", "llm-jax", "sweep", plan.spec, "--sweep-dir",
                         str(plan.sweep_dir), "--name", plan.name, "--wandb-trial",
                         *plan.base_overrides, "${args}"]
    return config
