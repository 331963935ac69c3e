"""`llm-jax sweep`: run the trials an experiment's `sweep(add, arg)` declares (`llm_jax.sweep`).

    llm-jax sweep experiments/pretrain_tiny.py --dry-run          # list trials and run dirs
    llm-jax sweep experiments/pretrain_tiny.py --parallel 2 --config.train.steps=100
    llm-jax sweep experiments/pretrain_tiny.py --backend slurm --slurm-arg=--partition=gpu

Exit code 0 when every trial finished ok, 1 when any failed; Ctrl-C or SIGTERM stops the
trials (they checkpoint) and exits with 128+signal. A rerun resumes."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from llm_jax.errors import ConfigError


def add_commands(sub) -> None:
    p = sub.add_parser("sweep", help="run an experiment's sweep() trials",
                       description="Overrides --config.KEY=VALUE apply to every trial.")
    p.add_argument("experiment", help="experiments/NAME.py or experiments/NAME.py:ARG")
    p.add_argument("--parallel", type=int, default=1,
                   help="trials at once (local); with slurm, the most array tasks at once")
    p.add_argument("--dry-run", action="store_true",
                   help="list the trials (slurm: print the script); run nothing")
    p.add_argument("--backend", choices=("local", "slurm"), default="local")
    p.add_argument("--name", help="sweep name and W&B group (default <experiment>-sweep)")
    p.add_argument("--sweep-dir", help="default runs/<experiment>/<name>")
    p.add_argument("--metric", help="summary metric (default: the bayes objective, else "
                   "eval_loss when logged, else loss)")
    p.add_argument("--slurm-arg", action="append", default=[], metavar="ARG",
                   help="an #SBATCH line, e.g. --slurm-arg=--partition=gpu (repeatable)")
    p.add_argument("--trial", metavar="INDEX_OR_NAME",
                   help="run one trial only (what each SLURM array task runs)")
    p.add_argument("--wandb", action="store_true",
                   help="write a W&B sweep config and print the wandb sweep/agent commands")
    p.add_argument("--wandb-trial", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_sweep, accepts_overrides=True)


def cmd_sweep(args: argparse.Namespace, overrides: list[str]) -> int:
    from llm_jax.sweep.space import plan_sweep

    if args.parallel < 1:
        raise ConfigError(f"--parallel must be at least 1, got {args.parallel}")
    if args.wandb_trial:
        return _wandb_trial(args, overrides)
    plan = plan_sweep(args.experiment, overrides, args.name, args.sweep_dir)
    if args.wandb:
        return _wandb(args, plan)
    if plan.bayes is not None and (args.backend == "slurm" or args.trial is not None):
        raise ConfigError("an add.bayes search runs locally (each trial depends on the earlier "
                          "ones); drop --backend slurm / --trial")
    if args.backend == "slurm":
        return _slurm(args, plan)
    if args.trial is not None:
        return _one_trial(plan, plan.find(args.trial), args.dry_run)
    if args.dry_run:
        _print_plan(plan)
        return 0
    return _run_local(args, plan)


def _print_plan(plan) -> None:
    from llm_jax.sweep.runner import SweepState

    print(f"sweep {plan.name}: {plan.spec} in {plan.sweep_dir} (W&B group {plan.name})")
    if plan.bayes is not None:
        b = plan.bayes
        print(f"Bayesian search (Optuna TPE, seed {b.seed}): {b.n} trials, {b.direction} "
              f"{b.objective}; study in {plan.sweep_dir / 'optuna.db'}")
        for key, dist in b.space.items():
            print(f"  {key}: {dist}")
        return
    records = SweepState(plan.sweep_dir).records()
    for t in plan.trials:
        status = records.get(t.name, {}).get("status", "pending")
        print(f"  {t.index:>3}  {status:<11}  {t.run_dir}  {' '.join(t.args())}")
    print(f"{len(plan.trials)} trials; shared overrides: {' '.join(plan.base_overrides) or '-'}")


def _summary_metric(args, plan, records) -> tuple[str, bool]:
    from llm_jax.tracking.compare import higher_is_better

    if plan.bayes is not None and not args.metric:
        return plan.bayes.objective, plan.bayes.direction == "maximize"
    metric = args.metric or ("eval_loss" if any("eval_loss" in (r.get("metrics") or {})
                                                  for r in records.values()) else "loss")
    return metric, higher_is_better(metric)


def _run_local(args, plan) -> int:
    from llm_jax.runs import RunLock
    from llm_jax.sweep import runner as sweep_runner

    plan.sweep_dir.mkdir(parents=True, exist_ok=True)
    runner = sweep_runner.LocalRunner(plan, parallel=args.parallel)
    # One sweep process per directory: two would run the same pending trials twice.
    with RunLock(plan.sweep_dir / "sweep.lock").acquire(job=f"sweep {plan.name}"):
        try:
            if plan.bayes is not None:
                from llm_jax.sweep.bayes import run_bayes

                run_bayes(plan, runner)
            else:
                todo = sweep_runner.pending_trials(plan, runner.state)
                print(f"sweep {plan.name}: {len(todo)} of {len(plan.trials)} trials to run, "
                      f"{args.parallel} at a time, in {plan.sweep_dir}", flush=True)
                runner.run(todo)
        except sweep_runner.SweepInterrupted as e:
            print(f"llm-jax: {e}", file=sys.stderr)
            return 128 + e.signum
        finally:
            runner.state.compact()
    records = runner.state.records()
    metric, maximize = _summary_metric(args, plan, records)
    print(sweep_runner.summary_table(plan, records, metric, maximize=maximize))
    failed = [t for t in plan.trials if records.get(t.name, {}).get("status") != "ok"]
    if failed:
        print(f"{len(failed)} of {len(plan.trials)} trials did not finish ok: see "
              f"{plan.sweep_dir / 'sweep.jsonl'} and each run's trial.log")
        return 1
    print(f"all {len(plan.trials)} trials ok; compare them: llm-jax compare --sweep "
          f"{plan.sweep_dir}")
    return 0


def _one_trial(plan, trial, dry_run: bool) -> int:
    from llm_jax.sweep.runner import LocalRunner, SweepInterrupted, SweepState, train_command

    if dry_run:
        print(" ".join(train_command(plan, trial)))
        return 0
    if SweepState(plan.sweep_dir).records().get(trial.name, {}).get("status") == "ok":
        print(f"trial {trial.index} {trial.name}: already finished ok")
        return 0
    try:
        record = LocalRunner(plan).run_one(trial)
    except SweepInterrupted as e:
        print(f"llm-jax: {e}", file=sys.stderr)
        return 128 + e.signum
    shown = {k: v for k, v in (record.get("metrics") or {}).items() if k in ("loss", "eval_loss")}
    print(f"trial {trial.index} {trial.name}: {record['status']} {json.dumps(shown)} "
          f"(all in {plan.sweep_dir / 'sweep.jsonl'})")
    return 0 if record["status"] == "ok" else 1


def _slurm(args, plan) -> int:
    from llm_jax.sweep.runner import pending_trials
    from llm_jax.sweep.slurm import sbatch_script, submit

    parallel = args.parallel if args.parallel > 1 else 0
    script = sbatch_script(plan, pending_trials(plan), slurm_args=args.slurm_arg,
                           parallel=parallel)
    if args.dry_run:
        print(script, end="")
        return 0
    submit(plan, script)
    return 0


def _wandb(args, plan) -> int:
    import yaml

    from llm_jax.config import get_experiment_config
    from llm_jax.sweep.wandb_sweep import CONFIG_FILE, wandb_sweep_config
    from llm_jax.tracking.compare import higher_is_better

    config = wandb_sweep_config(plan, metric=args.metric,
                                maximize=bool(args.metric and higher_is_better(args.metric)))
    w = get_experiment_config(plan.spec, plan.base_overrides).wandb
    text = yaml.safe_dump(config, sort_keys=False)
    if args.dry_run:
        print(text, end="")
        return 0
    plan.sweep_dir.mkdir(parents=True, exist_ok=True)
    path = plan.sweep_dir / CONFIG_FILE
    path.write_text(text)
    print(f"wrote {path}")
    where = f"--project {w.project}" + (f" --entity {w.entity}" if w.entity else "")
    sweep_id = _create_wandb_sweep(config, w.project, w.entity or None)
    if sweep_id is None:
        print("create it where W&B is reachable, then start agents:\n"
              f"  wandb sweep {where} {path}\n"
              f"  wandb agent {where} <SWEEP_ID>")
    else:
        print(f"created W&B sweep {sweep_id}; start agents with:\n"
              f"  wandb agent {where} {sweep_id}")
    return 0


def _create_wandb_sweep(config: dict, project: str, entity: str | None) -> str | None:
    """Create the sweep on the W&B server when a key is configured and the server answers;
    otherwise say why not and return None (nothing is pretended)."""
    from llm_jax.tracking.tracker import choose_mode

    try:
        mode, reason = choose_mode("online")
    except Exception as e:  # noqa: BLE001 - unreadable wandb settings: report, do not fail
        mode, reason = "offline", f"could not read the W&B settings ({e})"
    if mode != "online":
        print(f"not creating the W&B sweep: {reason or 'W&B is ' + mode}")
        return None
    import wandb

    try:
        return wandb.sweep(config, project=project, entity=entity)
    except Exception as e:  # noqa: BLE001 - the config file is written; say why, carry on
        print(f"creating the W&B sweep failed ({type(e).__name__}: {e})")
        return None


def _wandb_trial(args, overrides: list[str]) -> int:
    """One trial a W&B agent chose: overrides of declared keys name it, the rest are shared."""
    from llm_jax.runs import WANDB_RUN_ID_FILE
    from llm_jax.sweep.runner import SweepState
    from llm_jax.sweep.space import declare, plan_sweep

    keys = set(declare(args.experiment).keys())
    point, shared = {}, []
    for item in overrides:
        key, _, value = item.removeprefix("--config.").partition("=")
        if key in keys:
            point[key] = value
        else:
            shared.append(item)
    plan = plan_sweep(args.experiment, shared, args.name, args.sweep_dir)
    trial = plan.make_trial(len(SweepState(plan.sweep_dir).records()), point)
    if run_id := os.environ.get("WANDB_RUN_ID"):
        # The tracker resumes the W&B run id stored in the run directory: the agent's run.
        Path(trial.run_dir).mkdir(parents=True, exist_ok=True)
        (trial.run_dir / WANDB_RUN_ID_FILE).write_text(run_id + "\n")
    return _one_trial(plan, trial, args.dry_run)
