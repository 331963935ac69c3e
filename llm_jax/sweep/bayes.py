"""Bayesian search with Optuna (TPE): `add.bayes(n, space, objective=..., direction=...)`.

    run_bayes(plan, LocalRunner(plan, parallel=2))  # asks, runs and tells until n trials

The objective is the metric's last value in metrics.jsonl (missing or NaN: failed). The study
is SQLite, so a killed sweep resumes, rerunning trials left "running". Failed trials count
toward n; a suggestion equal to a finished trial gets that trial's value."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator

from llm_jax.errors import ConfigError, UserError
from llm_jax.sweep.runner import LocalRunner, metric_value
from llm_jax.sweep.space import (
    Choice,
    IntUniform,
    LogUniform,
    SweepPlan,
    Trial,
    Uniform,
    round_value,
)

log = logging.getLogger(__name__)

STUDY_FILE = "optuna.db"


def _optuna():
    try:
        import optuna
    except ImportError:
        raise UserError("add.bayes needs Optuna: pip install 'llm-jax[sweep]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own lines report each trial
    return optuna


def distributions(plan: SweepPlan) -> dict:
    """The search space as Optuna distributions (plain values are not searched)."""
    from optuna import distributions as d

    out = {}
    for key, dist in plan.bayes.space.items():
        if isinstance(dist, Uniform | LogUniform):
            out[key] = d.FloatDistribution(dist.low, dist.high, log=isinstance(dist, LogUniform))
        elif isinstance(dist, IntUniform):
            out[key] = d.IntDistribution(dist.low, dist.high)
        elif isinstance(dist, Choice):
            if not all(v is None or isinstance(v, bool | int | float | str) for v in dist.values):
                raise ConfigError(f"bayes choice for {key!r}: Optuna only takes None, bool, "
                                  "int, float and str values")
            out[key] = d.CategoricalDistribution(dist.values)
    return out


def open_study(plan: SweepPlan):
    """The sweep's study (created on first use), named after the sweep."""
    optuna = _optuna()
    plan.sweep_dir.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{(plan.sweep_dir / STUDY_FILE).resolve()}"
    study = optuna.create_study(study_name=plan.name, storage=storage,
                                direction=plan.bayes.direction, load_if_exists=True)
    # The seed moves on with the study's size: a resumed sweep reseeded as at its start would
    # replay the first random suggestions, i.e. propose the trials it already ran.
    seed = plan.bayes.seed + len(study.get_trials(deepcopy=False))
    study.sampler = optuna.samplers.TPESampler(seed=seed)
    return study


def _trial(plan: SweepPlan, number: int, params: dict) -> Trial:
    point = {k: (round_value(params[k]) if k in params else v)
             for k, v in plan.bayes.space.items()}
    return plan.make_trial(number, point)


def run_bayes(plan: SweepPlan, runner: LocalRunner) -> list[Trial]:
    """Run the study to n trials; returns every trial of the study, in order."""
    optuna = _optuna()
    running_state = optuna.trial.TrialState.RUNNING
    search = plan.bayes
    study = open_study(plan)
    space = distributions(plan)

    def finished_values() -> dict[str, float]:
        return {name: value for name, r in runner.state.records().items()
                if r.get("status") == "ok"
                and (value := metric_value(r, search.objective)) is not None
                and math.isfinite(value)}

    def trials() -> Iterator[Trial]:
        for frozen in study.get_trials(deepcopy=False, states=(running_state,)):
            log.info("study trial %d was left running: running it again", frozen.number)
            yield _trial(plan, frozen.number, frozen.params)
        while len(study.get_trials(deepcopy=False)) < search.n:
            asked = study.ask(space)
            trial = _trial(plan, asked.number, asked.params)
            if (value := finished_values().get(trial.name)) is not None:
                study.tell(asked.number, value)  # the same run, already finished
                continue
            yield trial

    def on_done(trial: Trial, record: dict) -> None:
        if record["status"] == "interrupted":
            return  # left running in the study: the next run of the sweep finishes it
        value = metric_value(record, search.objective)
        if record["status"] == "ok" and value is not None and math.isfinite(value):
            study.tell(trial.index, value)
            return
        if record["status"] == "ok":
            log.warning("trial %d %s logged no finite %s; told to Optuna as failed",
                        trial.index, trial.name, search.objective)
        study.tell(trial.index, state=optuna.trial.TrialState.FAIL)

    runner.run(trials(), on_done)
    plan.trials = [_trial(plan, t.number, t.params) for t in study.get_trials(deepcopy=False)]
    return plan.trials
