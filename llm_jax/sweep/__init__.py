"""Hyperparameter sweeps declared in the experiment file, run by `llm-jax sweep`.

An experiment file's `sweep(add, arg=None)` declares the trials; `add` records them:

    from llm_jax.sweep import choice, loguniform, randint, uniform

    def sweep(add, arg=None):
        add(**{"optim.lr": 1e-3})                              # one trial
        add.grid({"optim.lr": [1e-3, 2e-3], "optim.warmup_steps": [10, 30]})  # 4 trials
        add.random(8, {"optim.lr": loguniform(1e-4, 1e-2),     # 8 draws, reproducible
                       "optim.weight_decay": uniform(0.0, 0.1),
                       "data.batch_size": choice(8, 16),
                       "train.steps": 200}, seed=0)            # plain values: fixed
        # or, on its own (each trial is chosen from the results so far, with Optuna):
        add.bayes(12, {"optim.lr": loguniform(1e-4, 1e-2), "model.n_layers": randint(2, 6)},
                  objective="eval_loss", direction="minimize", seed=0)

Keys are config paths, as in `--config.KEY=VALUE`; every trial is checked against the config
before anything runs. `grid(space)` is also a plain function returning the points. Floats
drawn at random are kept to 4 significant digits, so run names stay readable. A sweep
declares trials (add / add.grid / add.random, in any mix) or one add.bayes search.

Each trial is `llm-jax train EXPERIMENT --workdir <sweep_dir>/<run name>
--config.wandb.group=<sweep name> <overrides>` in a subprocess; its run name comes from its
overrides (`llm_jax.runs.run_name`, e.g. `default,lr=0.001`). `<sweep_dir>/sweep.jsonl`
records every trial; a rerun skips the trials that finished ok and resumes the others.

Modules: `space` (declaration and expansion), `runner` (local subprocesses, sweep.jsonl,
summary), `bayes` (the Optuna study in `<sweep_dir>/optuna.db`), `slurm` (one job array),
`wandb_sweep` (the same declaration as a W&B sweep config).
"""

from llm_jax.sweep.space import choice, grid, loguniform, randint, uniform

__all__ = ["choice", "grid", "loguniform", "randint", "uniform"]
