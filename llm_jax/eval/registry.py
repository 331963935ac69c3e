"""Evaluators by name (big_vision's `config.evals`): the config says which run, with what.

    config.evals = ml_collections.ConfigDict({"lm_loss": {}, "chat": {"max_new_tokens": 96}})
    evaluate = build_evaluators(config, lm_batches=val, apply=apply, ...)  # a stage's parts

An unknown name, setting or missing part is one ConfigError naming it."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import ml_collections

from llm_jax.errors import ConfigError

Evaluate = Callable[[Any], dict[str, float]]


@dataclasses.dataclass(frozen=True)
class Evaluator:
    build: Callable[..., Evaluate]  # build(*parts, **settings) -> evaluate(params)
    parts: tuple[str, ...]  # what the stage must give, by name (the build's positional args)
    settings: dict[str, Any]  # the config's keys and their defaults (the build's kw-only args)


EVALUATORS: dict[str, Evaluator] = {}


def register(name: str) -> Callable:
    """`@register("name")` over `build(part, ..., *, setting=default, ...)`."""

    def add(build: Callable) -> Callable:
        params = inspect.signature(build).parameters.values()
        EVALUATORS[name] = Evaluator(
            build, tuple(p.name for p in params if p.kind == p.POSITIONAL_OR_KEYWORD),
            {p.name: p.default for p in params if p.kind == p.KEYWORD_ONLY})
        return build

    return add


def build_evaluators(config: ml_collections.ConfigDict, **parts: Any) -> Evaluate:
    """`evaluate(params)`: the evaluators `config.evals` names, built from the stage's
    `parts`, their metrics merged."""
    if "evals" not in config:
        raise ConfigError(f"config.evals is not set; name the evaluations of the stage "
                          f"(configs/evals.py), from: {', '.join(EVALUATORS)}")
    built = []
    for name, settings in config.evals.items():
        if name not in EVALUATORS:
            raise ConfigError(f"evals.{name}: no such evaluator; known: {', '.join(EVALUATORS)}")
        spec = EVALUATORS[name]
        settings = settings.to_dict() if isinstance(settings, ml_collections.ConfigDict) else {}
        unknown = sorted(set(settings) - set(spec.settings))
        if unknown:
            raise ConfigError(f"evals.{name}.{unknown[0]}: no such setting; it takes: "
                              f"{', '.join(spec.settings) or 'none'}")
        missing = [p for p in spec.parts if p not in parts]
        if missing:
            raise ConfigError(f"evals.{name}: the {config.stage} stage has no {missing[0]} "
                              f"to evaluate with")
        built.append(spec.build(*(parts[p] for p in spec.parts), **settings))

    def evaluate(params) -> dict[str, float]:
        metrics: dict[str, float] = {}
        for fn in built:
            metrics.update(fn(params))
        return metrics

    return evaluate


from llm_jax.eval import evaluators  # noqa: E402, F401 - registers the built-in evaluators
