"""`llm-jax run` (an experiment's pipeline of stages) and `llm-jax report` (report cards).

    llm-jax run experiments/speedrun_tiny.py --until sft --stage.grpo.train.steps=2
    llm-jax report runs/speedrun_tiny/default                 # (re)write the report cards"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_commands(sub) -> None:
    run = sub.add_parser("run", help="run (or resume) an experiment's pipeline of stages",
                         description="Overrides: --config.KEY=VALUE (every stage that has KEY), "
                         "--stage.NAME.KEY=VALUE (stage NAME only).")
    run.add_argument("experiment", help="experiments/NAME.py or experiments/NAME.py:ARG")
    run.add_argument("--workdir", help="pipeline directory (default runs/<experiment>/<arg>)")
    run.add_argument("--until", metavar="STAGE", help="stop after this stage")
    run.add_argument("--dry-run", action="store_true",
                     help="list the stages, their run directories and status; run nothing")
    run.set_defaults(func=cmd_run, accepts_overrides=True, accepts_stage_overrides=True)
    report = sub.add_parser("report", help="(re)write the report card of a run or pipeline")
    report.add_argument("path", metavar="RUN_OR_PIPELINE_DIR")
    report.set_defaults(func=cmd_report, accepts_overrides=False)


def run_pipeline_command(experiment: str, overrides: list[str], workdir: str | None = None,
                         until: str | None = None, dry_run: bool = False) -> int:
    from llm_jax.pipeline import plan_pipeline, run_pipeline

    plan = plan_pipeline(experiment, overrides, workdir)
    if dry_run:
        print(plan.describe())
        return 0
    if until is not None:
        plan.find(until)  # an unknown name fails before anything runs
    card = run_pipeline(plan, until=until)
    print(f"report card: {card}")
    return 0


def cmd_run(args: argparse.Namespace, overrides: list[str]) -> int:
    return run_pipeline_command(args.experiment, overrides, args.workdir, args.until,
                                args.dry_run)


def cmd_report(args: argparse.Namespace, overrides: list[str]) -> int:
    from llm_jax.tracking.report import write_report

    print(f"report card: {write_report(Path(args.path))}")
    return 0
