"""Direct Preference Optimization: fine-tune a chat model on preference pairs, no reward model.

    llm-jax train experiments/dpo_tiny.py        # from runs/sft_tiny/default
    llm-jax train experiments/dpo_tiny.py --config.data.train_paths='("prefs.jsonl",)'

The policy starts as the parent (an SFT run or a Hub folder) and the frozen reference *is* the
parent, restored into the same shardings (under LoRA: the frozen base the adapters sit on, so
no second copy). Each iteration takes one batch of pairs, computes the reference's sequence
log-probs of both replies (a separate forward pass, outside any LoRA adapters), then one
update of the sigmoid DPO loss (Rafailov et al. 2023) on the policy's, summed over the reply
tokens only (prompt and padding masked). Since the policy starts equal to the reference, the
first iteration's loss is log 2. Metrics carry TRL's names (`rewards/chosen`,
`rewards/rejected`, `rewards/accuracies`, `rewards/margins`, `logps/*`).

Evaluations: the same metrics over every held-out pair (`eval/rewards/accuracies` is held-out
preference accuracy) and the gold win rate of the policy's greedy replies over the parent's on
the built-in held-out RLHF prompts (`gold/win_rate`, judged by the noise-free gold judge).
Pairs are files or the built-in gold-labelled set, the same as the reward-model stage's.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
from flax import linen as nn

from llm_jax.checkpoints.sources import chat_template_for
from llm_jax.errors import ConfigError
from llm_jax.eval.pairs import prefixed, score_pairs
from llm_jax.eval.win_rate import make_win_rate_evaluator
from llm_jax.generate.logprobs import token_logprobs
from llm_jax.generate.sampler import Sampler
from llm_jax.losses.preference import dpo_loss, sequence_logprobs
from llm_jax.models.transformer import Transformer
from llm_jax.recipes.gold import GoldLabeler, rlhf_prompts
from llm_jax.recipes.preference_sets import pair_data, pair_iteration
from llm_jax.sharding.mesh import replicated
from llm_jax.train.setup import optimizer_from_config, start_run
from llm_jax.train.step import make_train_step

log = logging.getLogger(__name__)


def pair_logprobs(model: nn.Module, params, batch: dict) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(chosen, rejected) [B]: log-probs of each reply summed over its tokens, from one
    forward pass over the 2B sequences; the mask is shifted like the targets."""
    tokens = jnp.concatenate([batch["chosen_tokens"], batch["rejected_tokens"]])
    segments = jnp.concatenate([batch["chosen_segment_ids"], batch["rejected_segment_ids"]])
    reply = jnp.concatenate([batch["chosen_loss_mask"], batch["rejected_loss_mask"]])
    logps = sequence_logprobs(token_logprobs(model, params, tokens, mask=segments),
                              reply[:, 1:])
    n = batch["chosen_tokens"].shape[0]
    return logps[:n], logps[n:]


def make_dpo_loss(model: nn.Module, beta: float, label_smoothing: float) -> Callable:
    """`loss_fn(params, batch, rng) -> (loss, aux)`; the batch carries the reference's
    `ref_chosen_logps` / `ref_rejected_logps`."""

    def loss_fn(params, batch, rng):
        del rng
        chosen, rejected = pair_logprobs(model, params, batch)
        loss, metrics = dpo_loss(chosen, rejected, batch["ref_chosen_logps"],
                                 batch["ref_rejected_logps"], beta=beta,
                                 label_smoothing=label_smoothing, weights=batch["weights"])
        return loss, {"weight": batch["weights"].sum(), **metrics}

    return loss_fn


def check_dpo_config(dpo: ml_collections.ConfigDict) -> None:
    if dpo.beta <= 0:
        raise ConfigError(f"dpo.beta={dpo.beta} must be > 0")
    if not 0.0 <= dpo.label_smoothing < 0.5:
        raise ConfigError(f"dpo.label_smoothing={dpo.label_smoothing} must be in [0, 0.5)")
    if dpo.win_rate_prompts < 0 or dpo.win_rate_max_new_tokens < 1:
        raise ConfigError("dpo.win_rate_prompts must be >= 0 and win_rate_max_new_tokens >= 1")


def main(config: ml_collections.ConfigDict, run_dir: Path) -> dict[str, float]:
    """Train (or resume) the DPO run in `run_dir`; returns the final evaluation metrics."""
    dpo, data = config.dpo, config.data
    check_dpo_config(dpo)
    with start_run(config, run_dir, stage="dpo") as run:
        # --- tokenizer, template, policy state
        tokenizer = run.parent_tokenizer()
        template = chat_template_for(run.dir.path)
        model_cfg = run.model_config(tokenizer.vocab_size)
        model = Transformer(model_cfg)
        optimizer, lr_schedule = optimizer_from_config(config, config.train.steps)
        state, shardings, start = run.init_state(model_cfg, optimizer)

        # --- the frozen reference: the parent (under LoRA, the base itself)
        reference = run.lora.base if run.lora is not None else run.frozen_params(model_cfg)
        sampler = Sampler(model, mesh=run.mesh, rules=run.rules)

        # --- data: the reward model's pairs, tokenized once, batches fixed by (seed, iteration)
        pairs = pair_data(config, run, tokenizer, template, model_cfg.max_seq_len,
                          lambda: (sampler, reference), "DPO")

        # --- update step: reference log-probs first, then the DPO loss on the policy's
        loss_fn, jit_step, full_params = run.trained(
            make_dpo_loss(model, dpo.beta, dpo.label_smoothing))
        step_fn = jit_step(make_train_step(
            loss_fn, optimizer, grad_accum=config.optim.grad_accum,
            skip_nonfinite=config.train.on_nonfinite == "skip", lr_schedule=lr_schedule),
            shardings)

        # The reference params are an argument, not a closure: jit would bake them in.
        @functools.partial(jax.jit, out_shardings=run.batch_sharding)
        def reference_logps(params, batch):
            chosen, rejected = pair_logprobs(model, params, batch)
            return {"ref_chosen_logps": chosen, "ref_rejected_logps": rejected}

        # --- evaluations: held-out pairs (the reference's log-probs once), gold win rate
        val = pairs.heldout_batches

        @functools.partial(jax.jit, out_shardings=replicated(run.mesh))
        def score(params, batch):
            chosen, rejected = pair_logprobs(model, params, batch)
            return {"chosen": chosen, "rejected": rejected, "weights": batch["weights"]}

        reference_heldout = functools.cache(
            lambda: score_pairs(score, reference, val, run.put_batch))
        win_rate = None
        if dpo.win_rate:
            prompts = rlhf_prompts("heldout")
            win_rate = make_win_rate_evaluator(
                sampler, tokenizer, template, prompts[:dpo.win_rate_prompts or len(prompts)],
                reference, GoldLabeler(), max_new_tokens=dpo.win_rate_max_new_tokens)
        final_metrics: dict[str, float] = {}

        def evaluate(params):
            params, ref = full_params(params), reference_heldout()
            s = score_pairs(score, params, val, run.put_batch)
            loss, metrics = dpo_loss(s["chosen"], s["rejected"], ref["chosen"],
                                     ref["rejected"], beta=dpo.beta,
                                     label_smoothing=dpo.label_smoothing)
            final_metrics.update(prefixed({"loss": loss, **metrics}))
            if win_rate is not None:
                final_metrics.update(win_rate(params))
            return final_metrics

        loop_cfg = run.loop_config(tokens_per_iteration=2 * data.batch_size * pairs.length)
        iteration = pair_iteration(step_fn, pairs.schedule, run.put_batch, start,
                                   lambda batch: reference_logps(reference, batch))
        run.train(state, iteration, loop_cfg, start=start, evaluate=evaluate)
    return final_metrics
