"""Hyperparameter sweeps declared in the experiment file, run by `llm-jax sweep`.

    def sweep(add, arg=None):                      # keys as in --config.KEY=VALUE
        add(**{"optim.lr": 1e-3})                              # one trial
        add.grid({"optim.lr": [1e-3, 2e-3], "optim.warmup_steps": [10, 30]})  # 4 trials
        add.random(8, {"optim.lr": loguniform(1e-4, 1e-2), "train.steps": 200}, seed=0)
        add.bayes(12, {"optim.lr": loguniform(1e-4, 1e-2)}, objective="eval_loss")

Each trial is checked against the config first, then runs as a `llm-jax train` subprocess;
`<sweep_dir>/sweep.jsonl` records trials so a rerun skips finished ones."""

from llm_jax.sweep.space import choice, grid, loguniform, randint, uniform

__all__ = ["choice", "grid", "loguniform", "randint", "uniform"]
