"""What an experiment's `sweep(add, arg=None)` declares, and the trials it expands to.

`plan_sweep` checks every trial against the config and names its run directory. Imports
nothing heavy."""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from llm_jax.config import get_experiment_config, load_experiment
from llm_jax.errors import ConfigError
from llm_jax.runs import RUNS_ROOT, experiment_name, run_name

# Floats drawn by random or Bayesian search keep this many significant digits, so run names
# stay readable (lr=0.0003162, not lr=0.00031622776601683794).
SIGNIFICANT_DIGITS = 4


@dataclasses.dataclass(frozen=True)
class Uniform:
    low: float
    high: float

    def sample(self, rng: random.Random) -> float:
        return rng.uniform(self.low, self.high)


@dataclasses.dataclass(frozen=True)
class LogUniform:
    low: float
    high: float

    def sample(self, rng: random.Random) -> float:
        return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))


@dataclasses.dataclass(frozen=True)
class IntUniform:
    low: int
    high: int  # inclusive

    def sample(self, rng: random.Random) -> int:
        return rng.randint(self.low, self.high)


@dataclasses.dataclass(frozen=True)
class Choice:
    values: tuple

    def sample(self, rng: random.Random) -> Any:
        return rng.choice(self.values)


Distribution = Uniform | LogUniform | IntUniform | Choice


def uniform(low: float, high: float) -> Uniform:
    if not low < high:
        raise ConfigError(f"uniform({low}, {high}): low must be below high")
    return Uniform(float(low), float(high))


def loguniform(low: float, high: float) -> LogUniform:
    if not 0 < low < high:
        raise ConfigError(f"loguniform({low}, {high}): needs 0 < low < high")
    return LogUniform(float(low), float(high))


def randint(low: int, high: int) -> IntUniform:
    """An integer in [low, high], both ends included."""
    if not low <= high:
        raise ConfigError(f"randint({low}, {high}): low must not exceed high")
    return IntUniform(int(low), int(high))


def choice(*values: Any) -> Choice:
    if not values:
        raise ConfigError("choice() needs at least one value")
    return Choice(tuple(values))


def grid(space: Mapping[str, Sequence]) -> list[dict[str, Any]]:
    """The cartesian product of `{key: [values...]}`, first key slowest."""
    keys = [_key(k) for k in space]
    axes = []
    for key, values in zip(keys, space.values()):
        if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
            raise ConfigError(f"grid axis {key!r} needs a non-empty list of values")
        axes.append(list(values))
    return [dict(zip(keys, point)) for point in itertools.product(*axes)]


def sample_space(space: Mapping[str, Any], rng: random.Random) -> dict[str, Any]:
    """One draw: each distribution sampled in key order, plain values passed through."""
    point = {}
    for key, dist in space.items():
        value = dist.sample(rng) if isinstance(dist, Distribution) else dist
        point[_key(key)] = round_value(value)
    return point


def round_value(value: Any) -> Any:
    """Floats to SIGNIFICANT_DIGITS significant digits; anything else unchanged."""
    if isinstance(value, float) and math.isfinite(value) and value != 0:
        return float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    return value


def _key(key: Any) -> str:
    if not isinstance(key, str) or not key:
        raise ConfigError(f"sweep keys are config paths like 'optim.lr', got {key!r}")
    return key.removeprefix("--").removeprefix("config.")


@dataclasses.dataclass(frozen=True)
class Points:
    """Trials given one by one (`add(...)`) or as a grid (`add.grid`)."""

    points: tuple[dict, ...]
    kind: str  # "list" | "grid"


@dataclasses.dataclass(frozen=True)
class RandomSearch:
    n: int
    space: dict
    seed: int

    def points(self) -> list[dict]:
        rng = random.Random(self.seed)
        return [sample_space(self.space, rng) for _ in range(self.n)]


@dataclasses.dataclass(frozen=True)
class BayesSearch:
    """A sequential search (Optuna's TPE sampler): each trial is chosen from the earlier ones."""

    n: int
    space: dict
    objective: str  # a metric name in the trial's metrics.jsonl (its last logged value)
    direction: str  # "minimize" | "maximize"
    seed: int


Block = Points | RandomSearch | BayesSearch


class Declaration:
    """The `add` an experiment's `sweep(add, arg)` receives; it only records what is declared."""

    def __init__(self):
        self.blocks: list[Block] = []

    def __call__(self, **overrides: Any) -> None:
        point = {_key(k): v for k, v in overrides.items()}
        last = self.blocks[-1] if self.blocks else None
        if isinstance(last, Points) and last.kind == "list":
            self.blocks[-1] = Points((*last.points, point), "list")
        else:
            self.blocks.append(Points((point,), "list"))

    def grid(self, space: Mapping[str, Sequence]) -> None:
        self.blocks.append(Points(tuple(grid(space)), "grid"))

    def random(self, n: int, space: Mapping[str, Any], *, seed: int = 0) -> None:
        self.blocks.append(RandomSearch(_count(n, "random"), _space(space), int(seed)))

    def bayes(self, n: int, space: Mapping[str, Any], *, objective: str,
              direction: str = "minimize", seed: int = 0) -> None:
        if direction not in ("minimize", "maximize"):
            raise ConfigError(f"bayes direction must be minimize or maximize, got {direction!r}")
        if not isinstance(objective, str) or not objective:
            raise ConfigError("bayes needs objective='<metric name in metrics.jsonl>'")
        self.blocks.append(BayesSearch(_count(n, "bayes"), _space(space), objective, direction,
                                       int(seed)))

    def points(self) -> list[dict]:
        """Every statically known trial, in declaration order."""
        out = []
        for block in self.blocks:
            if isinstance(block, Points):
                out.extend(block.points)
            elif isinstance(block, RandomSearch):
                out.extend(block.points())
        return out

    def bayes_search(self) -> BayesSearch | None:
        found = [b for b in self.blocks if isinstance(b, BayesSearch)]
        if not found:
            return None
        if len(found) > 1 or len(found) != len(self.blocks):
            raise ConfigError("a sweep declares either trials (add / add.grid / add.random) "
                              "or one add.bayes search, not both")
        return found[0]

    def keys(self) -> list[str]:
        """Every config key the declaration varies."""
        keys: dict[str, None] = {}
        for block in self.blocks:
            spaces = block.points if isinstance(block, Points) else (block.space,)
            for space in spaces:
                keys.update(dict.fromkeys(space))
        return list(keys)


def _count(n: Any, what: str) -> int:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ConfigError(f"add.{what}(n, ...) needs a positive trial count, got {n!r}")
    return n


def _space(space: Mapping[str, Any]) -> dict:
    if not isinstance(space, Mapping) or not space:
        raise ConfigError("a search space is a non-empty {'config.key': distribution} dict")
    return {_key(k): v for k, v in space.items()}


def format_value(value: Any) -> str:
    """An override value as `--config.KEY=VALUE` text that `llm_jax.config` parses back."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return repr(value)


@dataclasses.dataclass(frozen=True)
class Trial:
    index: int
    overrides: dict[str, str]  # config key -> value text, in declaration order
    run_dir: Path

    @property
    def name(self) -> str:
        return self.run_dir.name

    def args(self) -> list[str]:
        return [f"--config.{k}={v}" for k, v in self.overrides.items()]


@dataclasses.dataclass
class SweepPlan:
    """A sweep ready to run: its trials (or its Bayesian search), directory and W&B group."""

    spec: str
    name: str
    sweep_dir: Path
    base_overrides: tuple[str, ...]
    declaration: Declaration
    trials: list[Trial]
    bayes: BayesSearch | None

    def make_trial(self, index: int, point: Mapping[str, Any]) -> Trial:
        """A trial from `{key: value}`; its overrides are checked against the config."""
        overrides = {_key(k): format_value(v) for k, v in point.items()}
        args = [f"--config.{k}={v}" for k, v in overrides.items()]
        try:
            config = get_experiment_config(self.spec, [*self.base_overrides, *args])
        except ConfigError as e:
            raise ConfigError(f"sweep trial {overrides}: {e}") from None
        return Trial(index, overrides, self.sweep_dir / run_name(self.spec, config.run.name,
                                                                  overrides))

    def find(self, ref: str) -> Trial:
        """A trial by its index or its run name (what a SLURM array task is given)."""
        for trial in self.trials:
            if ref in (str(trial.index), trial.name):
                return trial
        raise ConfigError(f"no trial {ref!r} in this sweep; it has {len(self.trials)} "
                          f"(0-{len(self.trials) - 1})")


def default_name(spec: str) -> str:
    """`<experiment>-sweep`, or `<experiment>-sweep-<arg>` for an experiment argument."""
    arg = spec.partition(":")[2]
    return f"{experiment_name(spec)}-sweep" + (f"-{arg}" if arg else "")


def declare(spec: str) -> Declaration:
    """What the experiment's `sweep(add, arg)` declares (nothing checked yet)."""
    module, arg = load_experiment(spec)
    if not callable(getattr(module, "sweep", None)):
        raise ConfigError(f"{spec.partition(':')[0]} defines no sweep(add, arg=None)")
    declaration = Declaration()
    try:
        module.sweep(declaration, arg)
    except ConfigError as e:
        raise ConfigError(f"{spec}: sweep(): {e}") from None
    except (TypeError, ValueError, KeyError) as e:
        raise ConfigError(f"{spec}: sweep(): {type(e).__name__}: {e}") from None
    return declaration


def plan_sweep(spec: str, base_overrides: Sequence[str] = (), name: str | None = None,
               sweep_dir: str | Path | None = None) -> SweepPlan:
    """Run the experiment's `sweep(add, arg)` and check every trial it declares."""
    declaration = declare(spec)
    get_experiment_config(spec, base_overrides)  # a bad shared override fails first, once
    name = name or default_name(spec)
    plan = SweepPlan(spec, name, Path(sweep_dir) if sweep_dir else
                     RUNS_ROOT / experiment_name(spec) / name, tuple(base_overrides),
                     declaration, [], declaration.bayes_search())
    if plan.bayes is not None:
        # One draw checks the search space's keys and value types before any trial runs.
        plan.make_trial(0, sample_space(plan.bayes.space, random.Random(plan.bayes.seed)))
        return plan
    points = declaration.points()
    if not points:
        raise ConfigError(f"{spec}: sweep() declared no trials")
    seen: dict[str, int] = {}
    for i, point in enumerate(points):
        trial = plan.make_trial(i, point)
        if trial.name in seen:
            raise ConfigError(f"{spec}: trials {seen[trial.name]} and {i} are the same run "
                              f"({trial.name}); each trial needs different overrides")
        seen[trial.name] = i
        plan.trials.append(trial)
    return plan
