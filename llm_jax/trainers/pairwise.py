"""Stages that learn from preference pairs: a reward model (Bradley-Terry) and DPO.

    llm-jax train experiments/rm_tiny.py         # from runs/sft_tiny/default

One skeleton; the objective gives the model, pair scores, loss and reference. Each iteration's
batch is fixed by (seed, iteration), so resuming needs no data iterator."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
from flax import linen as nn

from llm_jax.checkpoints.sources import chat_template_for
from llm_jax.errors import ConfigError
from llm_jax.eval.registry import build_evaluators
from llm_jax.generate.logprobs import token_logprobs
from llm_jax.generate.sampler import Sampler
from llm_jax.losses.preference import bradley_terry_loss, dpo_loss, sequence_logprobs
from llm_jax.models.config import ModelConfig
from llm_jax.models.headed import RewardModel, backbone_params
from llm_jax.models.transformer import Transformer
from llm_jax.recipes.preference_sets import pair_data, pair_iteration
from llm_jax.train.setup import Run, start_run


def _both(batch: dict, field: str) -> jnp.ndarray:
    """Chosen and rejected rows stacked: one forward pass over the 2B sequences."""
    return jnp.concatenate([batch[f"chosen_{field}"], batch[f"rejected_{field}"]])


def _split(values: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    n = values.shape[0] // 2
    return values[:n], values[n:]


class PairObjective:
    """What a pairwise stage trains: `scores(params, batch) -> (chosen, rejected)` [B] and
    `pair_loss(scores) -> (loss, metrics)`; `reference` is a frozen model's params or None."""

    stage: str
    reference = None
    prepare: Callable[[dict], dict] | None = None  # per-batch inputs computed outside the loss

    def __init__(self, config: ml_collections.ConfigDict, run: Run, model_cfg: ModelConfig):
        self.config, self.run, self.model_cfg = config, run, model_cfg
        self.parent_params = functools.cache(lambda: run.frozen_params(model_cfg))

    @classmethod
    def check_config(cls, config: ml_collections.ConfigDict) -> None:
        pass

    @functools.cached_property
    def sampler(self) -> Sampler:
        return Sampler(Transformer(self.model_cfg), mesh=self.run.mesh, rules=self.run.rules)

    def parent(self):
        """(sampler, params) of the parent model, which writes the built-in pairs."""
        return self.sampler, self.parent_params()

    def loss_fn(self, params, batch, rng):
        del rng
        chosen, rejected = self.scores(params, batch)
        loss, metrics = self.pair_loss({**batch, "chosen": chosen, "rejected": rejected},
                                       batch["weights"])
        return loss, {"weight": batch["weights"].sum(), **metrics}

    def eval_parts(self) -> dict:
        """What this stage's evaluators may use beside the held-out pairs."""
        return {}


class RewardObjective(PairObjective):
    """Parent transformer + fresh scalar head at the last real token; Bradley-Terry loss."""

    stage = "reward_model"

    def __init__(self, config, run, model_cfg):
        super().__init__(config, run, model_cfg)
        self.rm, self.settings = RewardModel(model_cfg), config.reward_model

    @classmethod
    def check_config(cls, config):
        if config.lora.rank:
            raise ConfigError("lora.rank: the reward-model stage trains every param; set "
                              "--config.lora.rank=0")

    def init_state(self, optimizer):
        """This run's newest checkpoint, else the parent's transformer with a fresh head."""

        def fresh(shardings):
            head_rng = jax.random.fold_in(jax.random.PRNGKey(self.config.run.seed), 1)
            head = jax.jit(lambda r: nn.meta.unbox(self.rm.init_head(r)),
                           out_shardings=shardings["head"])(head_rng)
            return {"transformer": backbone_params(self.parent_params()), "head": head}

        return self.run.init_state_with(self.rm.cfg, self.rm.init_params, optimizer, fresh)

    def scores(self, params, batch):
        return _split(self.rm.apply({"params": params}, _both(batch, "tokens"),
                                    _both(batch, "segment_ids")))

    def pair_loss(self, s, weights=None):
        return bradley_terry_loss(s["chosen"], s["rejected"],
                                  margin=s["margin"] if self.settings.use_margin else None,
                                  center_coef=self.settings.center_coef, weights=weights)


class DPOObjective(PairObjective):
    """DPO (Rafailov et al. 2023): the parent is start and frozen reference (loss log 2)."""

    stage = "dpo"

    def __init__(self, config, run, model_cfg):
        super().__init__(config, run, model_cfg)
        self.model, self.settings = Transformer(model_cfg), config.dpo

    @classmethod
    def check_config(cls, config):
        dpo = config.dpo
        if dpo.beta <= 0:
            raise ConfigError(f"dpo.beta={dpo.beta} must be > 0")
        if not 0.0 <= dpo.label_smoothing < 0.5:
            raise ConfigError(f"dpo.label_smoothing={dpo.label_smoothing} must be in [0, 0.5)")

    def init_state(self, optimizer):
        out = self.run.init_state(self.model_cfg, optimizer)
        lora = self.run.lora
        self.reference = lora.base if lora is not None else self.parent_params()

        # The reference params are an argument, not a closure: jit would bake them in.
        @functools.partial(jax.jit, out_shardings=self.run.batch_sharding)
        def reference_logps(params, batch):
            chosen, rejected = self.scores(params, batch)
            return {"ref_chosen": chosen, "ref_rejected": rejected}

        self.prepare = lambda batch: reference_logps(self.reference, batch)
        return out

    def parent(self):
        return self.sampler, self.reference

    def scores(self, params, batch):
        """Each reply's log-probs summed over its tokens (the mask shifted like targets)."""
        logps = token_logprobs(self.model, params, _both(batch, "tokens"),
                               mask=_both(batch, "segment_ids"))
        return _split(sequence_logprobs(logps, _both(batch, "loss_mask")[:, 1:]))

    def pair_loss(self, s, weights=None):
        return dpo_loss(s["chosen"], s["rejected"], s["ref_chosen"], s["ref_rejected"],
                        beta=self.settings.beta, label_smoothing=self.settings.label_smoothing,
                        weights=weights)

    def eval_parts(self):
        return {"sampler": self.sampler, "reference": self.reference}


OBJECTIVES: dict[str, type[PairObjective]] = {"reward_model": RewardObjective,
                                               "dpo": DPOObjective}


def main(config: ml_collections.ConfigDict, run_dir: Path) -> dict[str, float]:
    """Train (or resume) the pairwise stage `config.stage` in `run_dir`; returns the final
    evaluation metrics."""
    objective_cls = OBJECTIVES[config.stage]
    objective_cls.check_config(config)
    with start_run(config, run_dir, stage=objective_cls.stage) as run:
        tokenizer = run.parent_tokenizer()
        template = chat_template_for(run.dir.path)
        model_cfg = run.model_config(tokenizer.vocab_size)
        objective = objective_cls(config, run, model_cfg)
        optimizer, lr_schedule = run.optimizer()
        state, shardings, start = objective.init_state(optimizer)
        pairs = pair_data(config, run, tokenizer, template, model_cfg.max_seq_len,
                          objective.parent, objective.stage)
        step_fn, full_params = run.update_step(objective.loss_fn, optimizer, lr_schedule,
                                               shardings)
        evaluate = build_evaluators(
            config, pair_objective=objective, pair_batches=pairs.heldout_batches,
            put_batch=run.put_batch, mesh=run.mesh, tokenizer=tokenizer, template=template,
            **objective.eval_parts())
        iteration = pair_iteration(step_fn, pairs.schedule, run.put_batch, start,
                                   objective.prepare)
        return run.train(
            state, iteration, run.loop_config(
                tokens_per_iteration=2 * config.data.batch_size * pairs.length),
            start=start, evaluate=lambda params: evaluate(full_params(params)))
