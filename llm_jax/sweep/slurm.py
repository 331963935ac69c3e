"""A sweep as one SLURM job array: one array task per trial not yet finished.

Task ids map to trial names fixed when the script is written; each task `exec`s `llm-jax
sweep ... --trial NAME`, so SLURM's TERM reaches it and the trial checkpoints (`--requeue`)."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path

from llm_jax.errors import ConfigError, UserError
from llm_jax.sweep.space import SweepPlan, Trial

SCRIPT_FILE = "sweep.sbatch"


def sweep_task_command(plan: SweepPlan) -> list[str]:
    """What every array task runs, before `--trial NAME`."""
    return ["llm-jax", "sweep", plan.spec, "--sweep-dir", str(plan.sweep_dir), "--name",
            plan.name, *plan.base_overrides]


def _directive(arg: str) -> str:
    # `partition=gpu` and `--partition=gpu` both mean #SBATCH --partition=gpu
    arg = arg.strip()
    return arg if arg.startswith("-") else f"--{arg}"


def sbatch_script(plan: SweepPlan, trials: Sequence[Trial], *, slurm_args: Sequence[str] = (),
                  parallel: int = 0) -> str:
    """The array job's script; `parallel` > 0 caps how many tasks run at once (`%N`)."""
    if not trials:
        raise ConfigError(f"sweep {plan.name}: every trial already finished; nothing to submit")
    limit = f"%{parallel}" if parallel > 0 else ""
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name={plan.name}",
        f"#SBATCH --array=0-{len(trials) - 1}{limit}",
        f"#SBATCH --output={plan.sweep_dir}/slurm-%A_%a.out",
        "#SBATCH --requeue",
        "#SBATCH --signal=B:TERM@120",
        *(f"#SBATCH {_directive(a)}" for a in slurm_args),
        f"# Sweep {plan.name}: {len(trials)} trials of {plan.spec}, one per array task.",
        "# Each records itself in sweep.jsonl; its output goes to <run dir>/trial.log.",
        "set -euo pipefail",
        'case "$SLURM_ARRAY_TASK_ID" in',
        *(f"  {i}) trial={shlex.quote(t.name)} ;;" for i, t in enumerate(trials)),
        '  *) echo "no trial for array task $SLURM_ARRAY_TASK_ID" >&2; exit 2 ;;',
        "esac",
        f'exec {shlex.join(sweep_task_command(plan))} --trial "$trial"',
    ]
    return "\n".join(lines) + "\n"


def submit(plan: SweepPlan, script: str) -> Path:
    """Write the script into the sweep directory and hand it to `sbatch`."""
    plan.sweep_dir.mkdir(parents=True, exist_ok=True)
    path = plan.sweep_dir / SCRIPT_FILE
    path.write_text(script)
    try:
        done = subprocess.run(["sbatch", str(path)], capture_output=True, text=True)
    except FileNotFoundError:
        raise UserError(f"sbatch not found: submit {path} from a SLURM login node (or print "
                        "the script with --dry-run)") from None
    if done.returncode != 0:
        raise UserError(f"sbatch {path} failed: {done.stderr.strip() or done.returncode}")
    print(done.stdout.strip() or f"submitted {path}")
    return path
