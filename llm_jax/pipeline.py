"""Pipelines: stages of the stack run in order, each child starting from its parent's run.

    llm-jax run experiments/speedrun_tiny.py[:ARG] [--config.KEY=VALUE ...]
                [--stage.NAME.KEY=VALUE ...] [--until NAME] [--dry-run] [--workdir DIR]

`pipeline(arg=None)` returns `Stage(name, experiment, overrides)`s, each run in
`runs/<experiment>/<arg>/NN-name/`. Overrides, later wins: the stage's own; `--config.*` for
stages having the key; `init.from_run` = parent stage; `--stage.NAME.*`. A stage with
`done.json` is skipped; any other resumes from its newest checkpoint."""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ml_collections

from llm_jax.config import apply_overrides, flat_keys, get_experiment_config, load_experiment
from llm_jax.errors import ConfigError
from llm_jax.runs import RunDir, default_run_dir, experiment_name

log = logging.getLogger(__name__)

PREVIOUS = "<previous>"  # a stage's default parent: the stage before it
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclasses.dataclass(frozen=True)
class StageDir:
    """In a stage's overrides: the run directory of the earlier stage `name` (or `path`
    inside it, e.g. a file the stage wrote)."""

    name: str
    path: str = ""


@dataclasses.dataclass(frozen=True)
class Stage:
    """One step of a pipeline: which experiment, with which overrides, from which parent
    (`PREVIOUS` = the stage before, None = none: the stage's own `init` section decides)."""

    name: str
    experiment: str | ml_collections.ConfigDict
    overrides: Mapping[str, Any] | Sequence[str] = ()
    parent: str | None = PREVIOUS


@dataclasses.dataclass
class PlannedStage:
    """A stage resolved against the command line: its final config and run directory."""

    index: int
    stage: Stage
    trainer: str  # config.stage: the key of llm_jax.trainers.TRAINERS
    experiment: str  # the reference as resolved, or "<config>"
    config: ml_collections.ConfigDict
    run_dir: RunDir
    parent_dir: Path | None

    @property
    def name(self) -> str:
        return self.stage.name

    def status(self) -> str:
        if self.run_dir.done.is_file():
            return "done"
        steps = self.run_dir.checkpoint_steps()
        return f"resumes from iteration {steps[-1]}" if steps else "to run"


@dataclasses.dataclass
class Plan:
    spec: str
    root: Path
    stages: list[PlannedStage]
    overrides: list[str]

    def find(self, name: str) -> PlannedStage:
        for planned in self.stages:
            if planned.name == name:
                return planned
        raise ConfigError(_unknown_stage(name, [s.name for s in self.stages]))

    def describe(self) -> str:
        lines = [f"pipeline {self.spec}: {len(self.stages)} stages in {self.root}"]
        for p in self.stages:
            lines.append(f"  {p.index}. {p.name:<12} {p.trainer:<12} {p.experiment}  "
                         f"{p.run_dir.path}  [{p.status()}]")
        return "\n".join(lines)


def declares_only_pipeline(spec: str) -> bool:
    """Whether the experiment file has `pipeline()` and no `get_config()`."""
    module, _ = load_experiment(spec)
    return hasattr(module, "pipeline") and not hasattr(module, "get_config")


def _unknown_stage(name: str, names: list[str]) -> str:
    near = difflib.get_close_matches(name, names, n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    return f"unknown pipeline stage {name!r}{hint}; stages: {', '.join(names)}"


def _declared_stages(spec: str) -> list[Stage]:
    module, arg = load_experiment(spec)
    if not hasattr(module, "pipeline"):
        raise ConfigError(f"{spec} declares no pipeline(arg=None); run one config with "
                          f"llm-jax train {spec}")
    try:
        declared = list(module.pipeline(arg))
    except ConfigError:
        raise
    except (KeyError, ValueError, TypeError) as e:
        raise ConfigError(f"{spec}: {e}") from None
    stages = []
    for item in declared:
        try:
            stage = item if isinstance(item, Stage) else Stage(*item)
        except TypeError:
            raise ConfigError(f"{spec}: a stage is (name, experiment[, overrides[, parent]]), "
                              f"got {item!r}") from None
        if not isinstance(stage.name, str) or not _NAME.match(stage.name):
            raise ConfigError(f"{spec}: stage name {stage.name!r} must be letters, digits, "
                              "'_' or '-'")
        stages.append(stage)
    if not stages:
        raise ConfigError(f"{spec}: pipeline() returned no stages")
    names = [s.name for s in stages]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"{spec}: stage names must be unique; repeated: {', '.join(repeated)}")
    return stages


def _split_overrides(overrides: Sequence[str], names: list[str]
                     ) -> tuple[list[str], dict[str, list[str]]]:
    """(`--config.` overrides for every stage, {stage: its `--stage.NAME.` overrides})."""
    common, per_stage = [], {n: [] for n in names}
    for item in overrides:
        if not item.startswith("--stage."):
            common.append(item)
            continue
        name, sep, rest = item.removeprefix("--stage.").partition(".")
        if not sep or "=" not in rest or "=" in name:
            raise ConfigError(f"override {item!r} must look like --stage.NAME.KEY=VALUE")
        if name not in per_stage:
            raise ConfigError(_unknown_stage(name, names))
        per_stage[name].append(rest)
    return common, per_stage


def _override_strings(overrides: Mapping[str, Any] | Sequence[str],
                      dirs: Mapping[str, Path]) -> list[str]:
    """A stage's own overrides as `KEY=VALUE` strings, `StageDir`s replaced by paths."""
    if not isinstance(overrides, Mapping):
        return [str(o) for o in overrides]
    items = []
    for key, value in overrides.items():
        if isinstance(value, StageDir):
            if value.name not in dirs:
                raise ConfigError(f"StageDir({value.name!r}) for {key}: no earlier stage of "
                                  f"that name (earlier: {', '.join(dirs) or 'none'})")
            value = str(dirs[value.name] / value.path if value.path else dirs[value.name])
        items.append(f"{key}={value if isinstance(value, str) else repr(value)}")
    return items


def _stage_config(stage: Stage, base_dir: Path, own: list[str]
                  ) -> tuple[str, ml_collections.ConfigDict]:
    if isinstance(stage.experiment, ml_collections.ConfigDict):
        config = copy.deepcopy(stage.experiment)
        config.lock()
        apply_overrides(config, own)
        return "<config>", config
    ref = str(stage.experiment)
    path, sep, arg = ref.partition(":")
    if not Path(path).is_absolute() and (base_dir / path).is_file():
        relative = os.path.relpath(base_dir / path)
        ref = f"{relative if not relative.startswith('..') else base_dir / path}{sep}{arg}"
    return ref, get_experiment_config(ref, own)


def plan_pipeline(spec: str, overrides: Sequence[str] = (), workdir: str | Path | None = None
                  ) -> Plan:
    """Resolve every stage's config and run directory; runs nothing, writes nothing."""
    from llm_jax.trainers import stage_of

    stages = _declared_stages(spec)
    names = [s.name for s in stages]
    common, per_stage = _split_overrides(overrides, names)
    root = Path(workdir) if workdir else default_run_dir(spec).path
    base_dir = Path(spec.partition(":")[0]).resolve().parent
    group = f"{experiment_name(spec)}/{root.name}"
    dirs: dict[str, Path] = {}
    planned: list[PlannedStage] = []
    used = set()
    for index, stage in enumerate(stages, start=1):
        run_dir = RunDir(root / f"{index:02d}-{stage.name}")
        try:
            ref, config = _stage_config(stage, base_dir,
                                        _override_strings(stage.overrides, dirs))
            if "wandb" in config and not config.wandb.group:
                config.wandb.group = group  # one W&B group per pipeline run
            keys = set(flat_keys(config))
            mine = [o for o in common if _key(o) in keys]
            used.update(mine)
            apply_overrides(config, mine)
            parent_dir = _wire_parent(stage, config, index, stages, dirs)
            apply_overrides(config, per_stage[stage.name])
        except ConfigError as e:
            raise ConfigError(f"stage {stage.name!r}: {e}") from None
        try:
            trainer = stage_of(config)
        except ConfigError as e:
            raise ConfigError(f"stage {stage.name!r}: {e}") from None
        planned.append(PlannedStage(index, stage, trainer, ref, config, run_dir, parent_dir))
        dirs[stage.name] = run_dir.path
    for item in common:
        if item not in used:
            everywhere = sorted(set().union(*(flat_keys(p.config) for p in planned)))
            near = difflib.get_close_matches(_key(item), everywhere, n=1, cutoff=0.5)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ConfigError(f"unknown config key {_key(item)!r} in every stage{hint}")
    return Plan(spec, root, planned, list(overrides))


def _key(item: str) -> str:
    return item.removeprefix("--").removeprefix("config.").partition("=")[0]


def _wire_parent(stage: Stage, config, index: int, stages: list[Stage],
                 dirs: Mapping[str, Path]) -> Path | None:
    """Point `init.from_run` at the parent stage's run directory; returns that directory."""
    parent = stage.parent
    if parent == PREVIOUS:
        parent = stages[index - 2].name if index > 1 else None
    if parent is None:
        return None
    if parent not in dirs:
        raise ConfigError(f"parent {parent!r} is not an earlier stage "
                          f"(earlier: {', '.join(dirs) or 'none'})")
    if "init" not in config:
        raise ConfigError("its config has no init section to start from its parent")
    config.init.from_run = str(dirs[parent])
    config.init.from_hf = ""
    return dirs[parent]


# ---------------------------------------------------------------------------- running


def _write_json(path: Path, record: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)  # a crash mid-write never leaves half a marker


def write_manifest(plan: Plan) -> Path:
    """`pipeline.json`: the stages as planned, which `llm-jax report` reads back."""
    from llm_jax.runs import PIPELINE_FILE

    plan.root.mkdir(parents=True, exist_ok=True)
    path = plan.root / PIPELINE_FILE
    _write_json(path, {
        "experiment": plan.spec, "overrides": plan.overrides,
        "stages": [{"index": p.index, "name": p.name, "trainer": p.trainer,
                    "experiment": p.experiment, "dir": p.run_dir.path.name,
                    "parent": p.parent_dir.name if p.parent_dir else None}
                   for p in plan.stages]})
    return path


def run_pipeline(plan: Plan, until: str | None = None) -> Path:
    """Run the plan's unfinished stages in order (up to `until`); returns the report card."""
    import jax
    from tqdm.auto import tqdm

    from llm_jax.tracking import report
    from llm_jax.trainers import TRAINERS

    last = plan.find(until).index if until else len(plan.stages)
    main_process = jax.process_index() == 0
    if main_process:
        write_manifest(plan)
    bar = tqdm(total=last, unit="stage", dynamic_ncols=True, disable=not main_process,
               desc="pipeline")
    try:
        for planned in plan.stages[:last]:
            where = f"stage {planned.index}/{len(plan.stages)} {planned.name}"
            bar.set_description(where)
            if planned.run_dir.done.is_file():
                log.info("%s: finished earlier (%s); skipped", where, planned.run_dir.done)
                bar.update(1)
                continue
            log.info("%s (%s, %s) in %s", where, planned.trainer, planned.experiment,
                     planned.run_dir.path)
            start, cpu_start = time.perf_counter(), time.process_time()
            metrics = TRAINERS[planned.trainer](planned.config, planned.run_dir.path)
            if main_process:
                _write_json(planned.run_dir.done, done_record(
                    planned, metrics, time.perf_counter() - start,
                    time.process_time() - cpu_start, report.environment()))
                report.write_run_report(planned.run_dir.path)
            bar.update(1)
    finally:
        bar.close()
    if last < len(plan.stages):
        log.info("stopped after stage %s (--until); re-run without it to go on", until)
    card = (report.write_pipeline_report(plan.root, rewrite_stages=False) if main_process
            else plan.root)
    log.info("report card: %s", card)
    return card


def done_record(planned: PlannedStage, metrics: Mapping[str, float] | None, wall_s: float,
                cpu_s: float, environment: Mapping[str, str]) -> dict:
    """The contents of a finished stage's `done.json`. A trainer that found its run already
    complete returns no metrics; then the last logged value of each metric stands in."""
    from llm_jax.tracking.compare import final_metrics

    values = {k: float(v) for k, v in (metrics or {}).items()}
    return {"stage": planned.name, "trainer": planned.trainer,
            "experiment": planned.experiment,
            "metrics": values or final_metrics(planned.run_dir.path),
            # Of the invocation that finished the stage. CPU seconds (all threads) say what the
            # stage cost when other jobs shared the machine and stretched its wall time.
            "wall_s": round(wall_s, 1), "cpu_s": round(cpu_s, 1),
            "load_avg": round(os.getloadavg()[0], 2),
            "finished": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "environment": dict(environment)}
