"""`llm-jax` command line: train | run | sweep | report | compare | rank | sample | chat | export
| serve | data | tokenize | index | probe.

    llm-jax train experiments/pretrain_tiny.py[:ARG] [--config.KEY=VALUE ...] [--workdir DIR]
    llm-jax run experiments/speedrun_tiny.py [--stage.NAME.KEY=VALUE ...]   # a pipeline

User mistakes (config typos, bad data, unreadable checkpoints) print one line and exit with
code 2 (config) or 1 (data/run), never a traceback. A run stopped by SIGTERM/SIGINT saves a
checkpoint and exits with 128+signal; re-running the same command resumes it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path


def _setup_logging() -> None:
    # Libraries imported earlier may already have configured the root logger (at WARNING, with
    # a bare format): raise it to INFO and give every console handler our format instead.
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for handler in root.handlers:
        if type(handler) is logging.StreamHandler:
            handler.setFormatter(formatter)
    root.setLevel(logging.INFO)
    # absl must create its own "absl" logger (one that reports the library's caller, e.g.
    # orbax, rather than absl itself) before the loop below creates a plain one by that name.
    import absl.logging  # noqa: F401

    for noisy in ("absl", "orbax", "jax", "grain", "wandb", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def cmd_train(args: argparse.Namespace, overrides: list[str]) -> int:
    from llm_jax.config import get_experiment_config
    from llm_jax.errors import ConfigError
    from llm_jax.pipeline import declares_only_pipeline
    from llm_jax.runs import default_run_dir
    from llm_jax.trainers import TRAINERS, stage_of

    if declares_only_pipeline(args.experiment):
        from llm_jax.commands.run import run_pipeline_command

        return run_pipeline_command(args.experiment, overrides, args.workdir)
    if any(o.startswith("--stage.") for o in overrides):
        raise ConfigError(f"--stage.NAME.KEY=VALUE overrides are for pipelines; "
                          f"{args.experiment} has get_config(): use --config.KEY=VALUE")
    config = get_experiment_config(args.experiment, overrides)
    run_dir = (Path(args.workdir) if args.workdir
               else default_run_dir(args.experiment, config.run.name).path)
    if config.get("stage") == "curate":
        raise ConfigError(f"{args.experiment} curates data: run it with llm-jax data prepare")
    stage = stage_of(config)
    logging.info("run directory: %s", run_dir)
    metrics = TRAINERS[stage](config, run_dir)
    if metrics:
        logging.info("final: %s", ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    return 0


def cmd_compare(args: argparse.Namespace, overrides: list[str]) -> int:
    from llm_jax.errors import ConfigError, RunError
    from llm_jax.tracking.compare import compare_runs, plot_compare, sweep_run_dirs

    if bool(args.run_dirs) == bool(args.sweep):
        raise ConfigError("compare takes RUN_DIR... or --sweep DIR")
    run_dirs = sweep_run_dirs(Path(args.sweep)) if args.sweep else [Path(p) for p in args.run_dirs]
    if not run_dirs:
        raise RunError(f"{args.sweep}: no trial run directories (no sweep.jsonl, no config.json)")
    for run_dir in run_dirs:
        if not (run_dir / "metrics.jsonl").is_file() and not (run_dir / "config.json").is_file():
            raise RunError(f"{run_dir}: not a run directory (no metrics.jsonl, no config.json)")
    metrics = tuple(dict.fromkeys(args.metric))
    print(compare_runs(run_dirs, metrics=metrics, maximize=args.maximize))
    if not args.no_plots:
        out = Path(args.out or (Path(args.sweep) if args.sweep else run_dirs[0].parent) / "compare")
        written = plot_compare(run_dirs, metrics, out)
        print(f"\nplots: {', '.join(str(p) for p in written)}" if written else
              "\nno plots: none of the runs logged these metrics")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse that reports a command-line mistake as one line (no usage dump), exit 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="llm-jax", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    train = sub.add_parser("train", help="train (or resume) an experiment",
                           description="Overrides: --config.KEY=VALUE (repeatable).")
    train.add_argument("experiment", help="experiments/NAME.py or experiments/NAME.py:ARG")
    train.add_argument("--workdir", help="run directory (default runs/<experiment>/<arg>)")
    train.set_defaults(func=cmd_train, accepts_overrides=True, accepts_stage_overrides=True)
    compare = sub.add_parser("compare", help="compare runs' metrics and configs side by side",
                             description="Best = min, or max for accuracy/reward/score-like "
                             "metrics (see llm_jax.tracking.compare).")
    compare.add_argument("run_dirs", nargs="*", metavar="RUN_DIR")
    compare.add_argument("--sweep", metavar="DIR", help="every trial of a sweep directory")
    compare.add_argument("--metric", action="append", default=["loss", "eval_loss"],
                         help="a metric to show and plot besides loss, eval_loss (repeatable)")
    compare.add_argument("--maximize", action="append", default=[], metavar="METRIC",
                         help="count METRIC's best as its maximum (repeatable)")
    compare.add_argument("--out", help="folder for the PNG plots (default <runs' parent "
                         "folder>/compare, or <sweep dir>/compare)")
    compare.add_argument("--no-plots", action="store_true")
    compare.set_defaults(func=cmd_compare, accepts_overrides=False)
    from llm_jax.commands import data, knowledge, models, rank, run, serve, sweep, tokenize

    data.add_commands(sub)
    models.add_commands(sub)
    knowledge.add_commands(sub)
    tokenize.add_commands(sub)
    rank.add_commands(sub)
    sweep.add_commands(sub)
    run.add_commands(sub)
    serve.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    prefixes = ("--config.", "--stage.") if getattr(args, "accepts_stage_overrides", False) \
        else ("--config.",)
    overrides = [a for a in rest if a.startswith(prefixes)]
    unknown = [a for a in rest if not a.startswith(prefixes)]
    if getattr(args, "words", None) is not None:
        # argparse takes a command's positionals in one run: words after an option
        # (`tokenize RUN --chat "text"`) come back unparsed and belong to them.
        args.words += [a for a in unknown if not a.startswith("-")]
        unknown = [a for a in unknown if a.startswith("-")]
    if unknown or (overrides and not args.accepts_overrides):
        parser.error(f"unrecognized arguments: {' '.join(unknown or overrides)}")
    _setup_logging()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    # (errors, not train.loop: a command that trains imports JAX itself; curation never does)
    from llm_jax.errors import ConfigError, Preempted, UserError

    try:
        return args.func(args, overrides)
    except UserError as e:
        label = "config error" if isinstance(e, ConfigError) else type(e).__name__
        print(f"llm-jax: {label}: {_one_line(e)}", file=sys.stderr)
        return e.exit_code
    except Preempted as e:
        print(f"llm-jax: {e}", file=sys.stderr)
        return 128 + e.signum


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split()) or type(error).__name__


if __name__ == "__main__":
    sys.exit(main())
