"""A stage that makes 3 optimizer updates per loop iteration, run as a subprocess by
`test_multi_update_resume.py`:

    python -m tests.train.multi_update_stage WORKDIR ITERATIONS

It stands in for RL (μ epochs × minibatches per rollout batch): the loop counts iterations,
checkpoints by iteration, and `state.step` counts updates. Each iteration sleeps a little so
the test can kill it mid-run.
"""

import logging
import sys
import time

from configs import base, models
from llm_jax.data.pipeline import train_iterator
from llm_jax.losses.lm import make_lm_loss
from llm_jax.models.transformer import Transformer
from llm_jax.train.setup import optimizer_from_config, start_run
from llm_jax.train.step import make_train_step
from tests.helpers import CharTokenizer

UPDATES_PER_ITERATION = 3
DOCS = [f"document {i}: " + "lorem ipsum dolor " * (i % 5 + 1) for i in range(60)]


def config(iterations: int):
    cfg = base.base_config()
    cfg.model = models.model("tiny", vocab_size=260, d_model=32, n_layers=1, n_heads=2,
                             max_seq_len=32)
    cfg.data = base.data(seq_len=32, batch_size=8, vocab_size=260)
    cfg.optim.warmup_steps = 2
    cfg.train.update(steps=iterations, log_every=1, eval_every=0, sample_every=0,
                     checkpoint_every=3)
    cfg.wandb.mode = "disabled"
    return cfg


def main(workdir: str, iterations: int) -> None:
    cfg = config(iterations)
    with start_run(cfg, workdir, stage="multi_update") as run:
        data_iter = train_iterator(DOCS, CharTokenizer(), seq_len=32, batch_size=8, seed=0)
        model_cfg = run.model_config(CharTokenizer.vocab_size)
        model = Transformer(model_cfg)
        optimizer, schedule = optimizer_from_config(cfg, iterations * UPDATES_PER_ITERATION)
        state, shardings, start = run.init_state(model_cfg, optimizer, data_iter=data_iter)
        apply = lambda p, t, pos, seg: model.apply({"params": p}, t, pos, seg)  # noqa: E731
        step_fn = run.jit_step(make_train_step(make_lm_loss(apply), optimizer,
                                               lr_schedule=schedule), shardings)

        def iteration(state):
            losses = []
            for _ in range(UPDATES_PER_ITERATION):
                state, metrics = step_fn(state, run.put_batch(next(data_iter)))
                losses.append(float(metrics["loss"]))
            time.sleep(0.15)
            return state, {"loss": sum(losses) / len(losses), "first_loss": losses[0],
                           "updates": float(state.step), "finite": metrics["finite"]}

        run.train(state, iteration, run.loop_config(), start=start, data_iter=data_iter)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, force=True)
    main(sys.argv[1], int(sys.argv[2]))
