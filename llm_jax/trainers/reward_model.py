"""Reward model: learn a scalar score of replies from preference pairs (Bradley-Terry).

    llm-jax train experiments/rm_tiny.py         # from runs/sft_tiny/default
    llm-jax train experiments/rm_tiny.py --config.data.train_paths='("prefs.jsonl",)'

The model is the parent's transformer (an SFT run, `init.from_run`, or a Hub folder,
`init.from_hf`) without its LM head, plus a fresh scalar `RewardHead` read at each sequence's
last real token (`llm_jax.rl.reward_model`). Each iteration takes one batch of pairs, scores
chosen and rejected replies in one forward pass and minimizes −log σ(r_c − r_r − margin)
(+ c·mean((r_c + r_r)²) when centering is on), logging TRL's metrics (accuracy, margin,
mean_reward, reward_std); each evaluation scores every held-out pair. Pairs are files or the
built-in gold-labelled set (`llm_jax.recipes.preference_sets`, shared with DPO).

Checkpoints hold `{"transformer", "head"}` params, so `load_reward_model(run_dir)` scores with
the run later and `RewardModelReward(run_dir)` makes it an RL reward.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import linen as nn

from llm_jax.checkpoints.sources import chat_template_for
from llm_jax.errors import ConfigError
from llm_jax.eval.pairs import prefixed, score_pairs
from llm_jax.generate.sampler import Sampler
from llm_jax.losses.preference import bradley_terry_loss
from llm_jax.models.headed import RewardModel, backbone_params
from llm_jax.models.transformer import Transformer
from llm_jax.recipes.preference_sets import pair_data, pair_iteration
from llm_jax.rl.reward_model import STAGE
from llm_jax.sharding.mesh import replicated
from llm_jax.train.setup import Run, optimizer_from_config, start_run
from llm_jax.train.state import TrainState
from llm_jax.train.step import make_train_step

log = logging.getLogger(__name__)


def pair_rewards(rm: RewardModel, params, batch: dict) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(chosen, rejected) rewards [B] from one forward pass over the 2B sequences."""
    tokens = jnp.concatenate([batch["chosen_tokens"], batch["rejected_tokens"]])
    segments = jnp.concatenate([batch["chosen_segment_ids"], batch["rejected_segment_ids"]])
    rewards = rm.apply({"params": params}, tokens, segments)
    n = batch["chosen_tokens"].shape[0]
    return rewards[:n], rewards[n:]


def make_reward_loss(rm: RewardModel, center_coef: float, use_margin: bool) -> Callable:
    """`loss_fn(params, batch, rng) -> (loss, aux)` for the train-step factory."""

    def loss_fn(params, batch, rng):
        del rng
        chosen, rejected = pair_rewards(rm, params, batch)
        loss, metrics = bradley_terry_loss(
            chosen, rejected, margin=batch["margin"] if use_margin else None,
            center_coef=center_coef, weights=batch["weights"])
        return loss, {"weight": batch["weights"].sum(), **metrics}

    return loss_fn


def init_reward_state(run: Run, rm: RewardModel, optimizer: optax.GradientTransformation,
                      lm_params: Callable[[], dict]) -> tuple[TrainState, TrainState, int]:
    """(state, shardings, start iteration) of `{"transformer", "head"}` params: this run's
    newest checkpoint, else the parent's transformer (`lm_params()`) with a fresh head."""

    def fresh(shardings):
        head_rng = jax.random.fold_in(jax.random.PRNGKey(run.config.run.seed), 1)
        head = jax.jit(lambda r: nn.meta.unbox(rm.init_head(r)),
                       out_shardings=shardings["head"])(head_rng)
        return {"transformer": backbone_params(lm_params()), "head": head}

    return run.init_state_with(rm.cfg, rm.init_params, optimizer, fresh)


def main(config: ml_collections.ConfigDict, run_dir: Path) -> dict[str, float]:
    """Train (or resume) the reward model in `run_dir`; returns the final held-out metrics."""
    rm_cfg, data = config.reward_model, config.data
    if config.lora.rank:
        raise ConfigError("lora.rank: the reward-model stage trains every param; set "
                          "--config.lora.rank=0")
    with start_run(config, run_dir, stage=STAGE) as run:
        # --- tokenizer, template, the parent (sampled for the built-in set; the backbone)
        tokenizer = run.parent_tokenizer()
        template = chat_template_for(run.dir.path)
        model_cfg = run.model_config(tokenizer.vocab_size)
        lm_params = functools.cache(lambda: run.frozen_params(model_cfg))

        def parent():
            return Sampler(Transformer(model_cfg), mesh=run.mesh, rules=run.rules), lm_params()

        # --- model, optimizer, state; data: pairs tokenized once, batches fixed by iteration
        rm = RewardModel(model_cfg)
        optimizer, lr_schedule = optimizer_from_config(config, config.train.steps)
        state, shardings, start = init_reward_state(run, rm, optimizer, lm_params)
        pairs = pair_data(config, run, tokenizer, template, model_cfg.max_seq_len, parent,
                          "reward model")

        # --- update step: Bradley-Terry on the batch's pairs
        step_fn = run.jit_step(make_train_step(
            make_reward_loss(rm, rm_cfg.center_coef, rm_cfg.use_margin), optimizer,
            grad_accum=config.optim.grad_accum,
            skip_nonfinite=config.train.on_nonfinite == "skip", lr_schedule=lr_schedule),
            shardings)

        # --- evaluation: the loss and its metrics over every held-out pair at once
        val = pairs.heldout_batches

        @functools.partial(jax.jit, out_shardings=replicated(run.mesh))
        def score(params, batch):
            chosen, rejected = pair_rewards(rm, params, batch)
            return {"chosen": chosen, "rejected": rejected, "margin": batch["margin"],
                    "weights": batch["weights"]}

        final_metrics: dict[str, float] = {}

        def evaluate(params):
            s = score_pairs(score, params, val, run.put_batch)
            loss, metrics = bradley_terry_loss(
                s["chosen"], s["rejected"], margin=s["margin"] if rm_cfg.use_margin else None,
                center_coef=rm_cfg.center_coef)
            final_metrics.update(prefixed({"loss": loss, **metrics}))
            return final_metrics

        loop_cfg = run.loop_config(tokens_per_iteration=2 * data.batch_size * pairs.length)
        run.train(state, pair_iteration(step_fn, pairs.schedule, run.put_batch, start), loop_cfg,
                  start=start, evaluate=evaluate)
    return final_metrics
