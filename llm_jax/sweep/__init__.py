"""Hyperparameter sweeps declared in the experiment file, run by `llm-jax sweep`.

    def sweep(add, arg=None):                      # keys as in --config.KEY=VALUE
        add(**{"optim.lr": 1e-3})                              # one trial
        add.grid({"optim.lr": [1e-3, 2e-3], "optim.warmup_steps": [10, 30]})  # 4 trials
        add.random(8, {"optim.lr": loguniform(1e-4, 1e-2), "train.steps": 200}, seed=0)
        # or, on its own: each trial chosen from the results so far (Optuna)
        add.bayes(12, {"optim.lr": loguniform(1e-4, 1e-2)}, objective="eval_loss",
                  direction="minimize", seed=0)

Every trial is checked against the config before anything runs, then runs as `llm-jax train
EXPERIMENT --workdir <sweep_dir>/<run name> <overrides>` in a subprocess; random floats keep
4 significant digits so run names stay readable. `<sweep_dir>/sweep.jsonl` records every
trial, so a rerun skips finished ones and resumes the others. Modules: `space`, `runner`
(local), `bayes` (Optuna), `slurm` (one job array), `wandb_sweep`.
"""

from llm_jax.sweep.space import choice, grid, loguniform, randint, uniform

__all__ = ["choice", "grid", "loguniform", "randint", "uniform"]
