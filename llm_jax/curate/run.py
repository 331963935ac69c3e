"""Run a curation plan with an executor, then count, report and log it.

    result = run_curation(config, run_dir)             # local: every stage, then the report
    result = run_curation(config, run_dir, "slurm")    # submits the jobs; report afterwards
    write_curation_report(config, run_dir)             # (re)writes it from the saved stats

Re-running the same run directory skips the tasks datatrove recorded as complete, so an
interrupted run resumes. The inputs default to the demo WARC (`demo_warc.py`), built once
under the cache.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path

import ml_collections

from llm_jax.config import save_config, to_dict
from llm_jax.curate.plan import CurationPlan, plan_curation
from llm_jax.curate.report import StepCounts, step_counts, write_report
from llm_jax.curate.warm import warm_up
from llm_jax.runs import CONFIG_FILE, RunLock

log = logging.getLogger(__name__)


@dataclasses.dataclass
class CurationResult:
    plan: CurationPlan
    rows: list[StepCounts]  # empty when the jobs were only submitted (SLURM)
    wall_s: float
    report: Path | None


def demo_inputs(config: ml_collections.ConfigDict, build: bool = True) -> tuple[str, ...]:
    """The demo WARC folder of `config.demo` (built with apt on first use, when `build`)."""
    from llm_jax.curate.demo_warc import build_demo_warc
    from llm_jax.data.corpus import cache_root

    d = config.demo
    # v3: the version of demo_warc.py's injections; a change writes a new folder
    folder = cache_root() / "curate" / f"demo-v3-{d.package}-{d.pages}-s{d.seed}-x{d.shards}"
    done = folder.parent / f"{folder.name}.complete"  # beside it: the reader reads every file
    if build and not done.exists():
        log.info("building the demo WARC from Debian's %s into %s", d.package, folder)
        build_demo_warc(folder, d.package, d.pages, d.seed, d.shards)
        done.write_text("")
    return (str(folder),)


def curation_plan(config: ml_collections.ConfigDict, run_dir: Path,
                  build_inputs: bool = True) -> CurationPlan:
    inputs = tuple(config.input.paths) or demo_inputs(config, build=build_inputs)
    return plan_curation(config, run_dir, inputs, must_exist=build_inputs)


def run_curation(config: ml_collections.ConfigDict, run_dir: Path,
                 backend: str = "local") -> CurationResult:
    run_dir = Path(run_dir)
    plan = curation_plan(config, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "work" / "filtered").mkdir(parents=True, exist_ok=True)  # read even if empty
    with RunLock(run_dir / "run.lock").acquire(job=f"data prepare ({backend})"):
        save_config(config, run_dir / CONFIG_FILE)
        executors = plan.executors(backend, config)
        # datatrove skips the tasks an earlier run completed: the time then covers only part
        resumed = any(plan.logs_dir.glob("*/completions/*"))
        start = time.perf_counter()
        if backend == "local":
            run_locally(plan, executors, config.executor)
        else:
            executors[-1].run()  # each executor runs (or submits) the one it depends on first
        wall_s = 0.0 if resumed else time.perf_counter() - start
        if resumed:
            log.info("resumed %s: finished tasks were skipped, so no throughput is reported",
                     run_dir)
    if backend == "slurm":
        return CurationResult(plan, [], wall_s, None)
    rows, report = _report_and_log(config, plan, wall_s)
    return CurationResult(plan, rows, wall_s, report)


def run_locally(plan: CurationPlan, executors: list, settings: ml_collections.ConfigDict) -> None:
    """Datatrove's local executors, one stage after the other, with the fixed costs cut.

    - `preload` (forked workers): what the steps load lazily is loaded here once (warm.py).
    - `in_process_below_mb`: a stage after `filter` whose input is smaller runs its tasks
      one after another in this process (datatrove's workers=1) instead of starting a pool
      of workers for a fraction of a second of work. Its tasks, and so its outputs, are
      the same.
    """
    if settings.preload and settings.start_method == "fork":  # only forks inherit it
        warm_up([step for stage in plan.stages for step in stage.pipeline])
    for stage, executor in zip(plan.stages, executors):
        if stage.reads is not None and executor.workers > 1:
            size_mb = folder_bytes(stage.reads) / 2**20
            if size_mb < settings.in_process_below_mb:
                log.info("%s: input %.2f MB, its %d tasks run in this process", stage.name,
                         size_mb, executor.tasks)
                executor.workers = 1
        executor.run()  # what it depends on has run: datatrove runs it only once


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def write_curation_report(config: ml_collections.ConfigDict, run_dir: Path) -> Path:
    """The report of a run whose stages finished elsewhere (a SLURM run)."""
    plan = curation_plan(config, Path(run_dir), build_inputs=False)
    return _report_and_log(config, plan, 0.0)[1]


def _cores(config: ml_collections.ConfigDict) -> int:
    return max(1, min(config.executor.workers, config.executor.tasks, os.cpu_count() or 1))


def _report_and_log(config, plan: CurationPlan, wall_s: float):
    from llm_jax.tracking.tracker import Tracker, TrackerConfig

    rows = step_counts(plan)
    cores = _cores(config)
    report = write_report(plan, rows, wall_s, cores, config.report.examples_per_filter,
                          config.report.example_chars)
    w = config.wandb
    tracker = Tracker(plan.run_dir, TrackerConfig(
        project=w.project, name=plan.run_dir.name, group=w.group or None, job_type="curate",
        mode=w.mode, entity=w.entity or None, tags=tuple(w.tags)), to_dict(config))
    try:
        for i, r in enumerate(rows):
            tracker.log(i, {"docs_in": r.docs_in, "docs_out": r.docs_out, "removed": r.removed,
                            "chars_in": r.chars_in, "chars_out": r.chars_out,
                            "step_seconds": r.seconds})
        tracker.log_samples(0, [{"step": r.label, "docs_in": r.docs_in, "docs_out": r.docs_out,
                                 "removed": r.removed, "chars_out": r.chars_out} for r in rows])
        totals = {"documents_read": rows[0].docs_out, "documents_kept": rows[-1].docs_out,
                  "characters_read": rows[0].chars_out, "characters_kept": rows[-1].chars_out,
                  **{f"removed/{r.label}": r.removed for r in rows[1:]}}
        if wall_s:
            totals |= {"wall_seconds": round(wall_s, 2), "cores": cores,
                       "documents_per_s_per_core": round(rows[0].docs_out / wall_s / cores, 2)}
        tracker.summary(**totals)
    finally:
        tracker.finish()
    log.info("curation report: %s", report)
    return rows, report
