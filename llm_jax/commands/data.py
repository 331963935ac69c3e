"""`llm-jax data prepare`: curate raw pages into pretraining Parquet (`llm_jax.curate`).

    llm-jax data prepare experiments/curate_tiny.py                     # local, every stage
    llm-jax data prepare experiments/curate_tiny.py --dry-run           # the plan, runs nothing
    llm-jax data prepare experiments/curate_tiny.py --backend slurm     # submits one job per stage
    llm-jax data prepare experiments/curate_tiny.py --backend ray --dry-run
    llm-jax data report runs/curate_tiny/default                        # after a SLURM run

The run directory (`runs/<experiment>/<arg>/`, or `--workdir`) holds `data/` (the clean
Parquet shards), `curation_report.md` with its bar chart, `removed/<step>/` (what each filter
dropped), `logs/<stage>/` (datatrove's logs and stats) and the W&B run.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import json
import shutil
from pathlib import Path

from llm_jax.errors import ConfigError, RunError


def add_commands(sub) -> None:
    data = sub.add_parser("data", help="pretraining data: curate raw pages (datatrove)")
    data_sub = data.add_subparsers(dest="data_command", required=True, parser_class=type(data))
    prepare = data_sub.add_parser(
        "prepare", help="run a curation experiment: raw pages in, clean Parquet out",
        description="Overrides: --config.KEY=VALUE (repeatable).")
    prepare.add_argument("experiment", help="experiments/NAME.py or experiments/NAME.py:ARG")
    prepare.add_argument("--workdir", help="run directory (default runs/<experiment>/<arg>)")
    prepare.add_argument("--backend", choices=("local", "slurm", "ray"), default="local")
    prepare.add_argument("--dry-run", action="store_true",
                         help="print the stages, inputs, outputs and executor (slurm: the "
                         "job scripts); run nothing")
    prepare.set_defaults(func=cmd_prepare, accepts_overrides=True)
    report = data_sub.add_parser("report", help="(re)write a curation run's report")
    report.add_argument("run_dir", metavar="RUN_DIR")
    report.set_defaults(func=cmd_report, accepts_overrides=False)


def _curation_config(experiment: str, overrides: list[str]):
    from llm_jax.config import get_experiment_config

    config = get_experiment_config(experiment, overrides)
    if config.get("stage") != "curate":
        raise ConfigError(f"{experiment} is not a curation experiment (config.stage="
                          f"{config.get('stage')!r}); train it with llm-jax train")
    return config


def cmd_prepare(args: argparse.Namespace, overrides: list[str]) -> int:
    from llm_jax.curate.run import curation_plan, run_curation
    from llm_jax.runs import default_run_dir

    config = _curation_config(args.experiment, overrides)
    run_dir = (Path(args.workdir) if args.workdir
               else default_run_dir(args.experiment, config.run.name).path)
    if args.dry_run:
        print(curation_plan(config, run_dir, build_inputs=False).describe(args.backend, config))
        return 0
    if args.backend == "slurm" and shutil.which("sbatch") is None:
        raise RunError("--backend slurm submits jobs with sbatch, which is not on this machine "
                       "(run it on a SLURM login node; --dry-run shows the jobs anywhere)")
    if args.backend == "ray":
        try:
            import ray
        except ImportError:
            raise RunError("--backend ray needs ray: pip install ray") from None
        ray.init(ignore_reinit_error=True)
    result = run_curation(config, run_dir, args.backend)
    if result.report is None:
        print(f"submitted {len(result.plan.stages)} SLURM jobs; when they finish: "
              f"llm-jax data report {run_dir}")
        return 0
    read, kept = result.rows[0].docs_out, result.rows[-1].docs_out
    print(f"{read} documents read, {kept} kept, in {result.wall_s:.1f} s; "
          f"data: {result.plan.output_dir}; report: {result.report}")
    # Everything is written and closed. At exit the interpreter's collector would walk and
    # free every object datatrove, pandas and the language model left (~0.25 s here);
    # frozen then, they go with the process's memory.
    atexit.register(gc.freeze)
    return 0


def cmd_report(args: argparse.Namespace, overrides: list[str]) -> int:
    import ml_collections

    from llm_jax.curate.run import write_curation_report
    from llm_jax.runs import CONFIG_FILE

    run_dir = Path(args.run_dir)
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise RunError(f"{run_dir}: not a curation run (no {CONFIG_FILE})")
    config = ml_collections.ConfigDict(json.loads(path.read_text()))
    print(f"curation report: {write_curation_report(config, run_dir)}")
    return 0
