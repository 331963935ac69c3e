"""Pretraining: next-token prediction on packed documents.

    llm-jax train experiments/pretrain_tiny.py [--config.train.steps=2000] [--workdir DIR]
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from llm_jax.data.pipeline import eval_batches, train_iterator
from llm_jax.data.sources import BadRecordStats
from llm_jax.data.stats import unigram_entropy
from llm_jax.generate.sampler import SamplingConfig, generate
from llm_jax.losses.lm import loss_mask, make_lm_loss, token_logprobs_from_logits
from llm_jax.models.transformer import Transformer
from llm_jax.sharding.mesh import batch_sharding, check_params_sharded
from llm_jax.train.checkpoint import Checkpointer, abstract_like
from llm_jax.train.flops import peak_flops_per_device
from llm_jax.train.init import init_train_state
from llm_jax.train.loop import LoopConfig, run_training
from llm_jax.train.optim import make_optimizer
from llm_jax.train.step import jit_train_step, make_train_step
from llm_jax.trainers import common

log = logging.getLogger(__name__)


def make_evaluator(model: Transformer, batches, put_batch, byte_lengths: np.ndarray):
    """`evaluate(params) -> {eval_loss, eval_bpb, eval_ppl}` over fixed validation batches."""
    byte_table = jnp.asarray(byte_lengths, jnp.float32)

    @jax.jit
    def eval_step(params, batch):
        logits = model.apply({"params": params}, batch["inputs"], batch["positions"],
                             batch["segment_ids"])
        mask = loss_mask(batch).astype(jnp.float32)
        nll = -token_logprobs_from_logits(logits, batch["targets"]) * mask
        return nll.sum(), mask.sum(), (byte_table[batch["targets"]] * mask).sum()

    def evaluate(params):
        total = jnp.zeros(3)
        for batch in batches:
            total = total + jnp.stack(eval_step(params, put_batch(batch)))
        nll, n_tokens, n_bytes = (float(x) for x in jax.device_get(total))
        loss = nll / max(n_tokens, 1.0)
        return {"eval_loss": loss, "eval_ppl": math.exp(min(loss, 50.0)),
                "eval_bpb": nll / math.log(2) / max(n_bytes, 1.0)}

    return evaluate


def make_sample_fn(model, tokenizer, train_cfg: ml_collections.ConfigDict, mesh, rules):
    """`sample(params) -> [{prompt, completion}]`: continuations of the configured prompts."""
    sampling = SamplingConfig(max_new_tokens=train_cfg.sample_tokens,
                              temperature=train_cfg.sample_temperature,
                              top_p=train_cfg.sample_top_p,
                              stop_tokens=(tokenizer.eos_id,), pad_id=tokenizer.pad_id)
    prompts = list(train_cfg.sample_prompts)
    prompt_ids = [[tokenizer.bos_id, *tokenizer.encode(p)] for p in prompts]

    def sample(params):
        rollout = generate(model, params, prompt_ids, jax.random.PRNGKey(0), sampling,
                           mesh=mesh, rules=rules)
        tokens, mask = np.asarray(rollout.tokens), np.asarray(rollout.mask)
        return [{"prompt": p, "completion": tokenizer.decode(
                    [t for t, m in zip(tokens[i], mask[i]) if m and t != tokenizer.eos_id])}
                for i, p in enumerate(prompts)]

    return sample


def main(config: ml_collections.ConfigDict, run_dir: Path) -> dict[str, float]:
    """Train (or resume) the run in `run_dir`; returns the final evaluation metrics."""
    common.start_run(config, run_dir)
    bad_records = BadRecordStats()
    train_docs, val_docs = common.load_corpus(config.data, bad_records)
    tokenizer = common.get_tokenizer(config.data, run_dir, train_docs)
    model_cfg = common.model_config(config, tokenizer)
    model = Transformer(model_cfg)
    mesh, rules = common.mesh_and_rules(config)
    steps = config.train.steps
    optimizer, schedule = make_optimizer(common.optim_config(config), steps)
    seq_len, global_batch = config.data.seq_len, config.data.batch_size
    local_batch = common.local_batch_size(global_batch)

    with common.mesh_context(mesh, rules):
        dummy = jnp.zeros((1, seq_len), jnp.int32)
        state, shardings = init_train_state(
            lambda rng: model.init(rng, dummy)["params"], optimizer,
            jax.random.PRNGKey(config.run.seed), mesh, rules)
        replicated_params = check_params_sharded(state.params)
        if replicated_params:
            log.warning("large params are replicated on every device under rule set %r: %s",
                        config.mesh.rules, ", ".join(replicated_params[:5]))
        log.info("model: %.2fM params, mesh %s", model_cfg.num_params() / 1e6,
                 dict(mesh.shape))

        def apply(params, tokens, positions, segment_ids):
            return model.apply({"params": params}, tokens, positions, segment_ids)

        train_step = make_train_step(
            make_lm_loss(apply), optimizer, grad_accum=config.optim.grad_accum,
            skip_nonfinite=config.train.on_nonfinite == "skip", lr_schedule=schedule)
        sharding = batch_sharding(mesh)
        step_fn = jit_train_step(train_step, shardings, sharding)
        put_batch = common.make_put_batch(sharding)

        data_iter = train_iterator(
            train_docs, tokenizer, seq_len=seq_len, batch_size=local_batch,
            seed=config.data.shuffle_seed, shard_index=jax.process_index(),
            shard_count=jax.process_count())
        checkpointer = Checkpointer(run_dir / "checkpoints",
                                    save_every=config.train.checkpoint_every,
                                    keep=config.train.keep_checkpoints)
        restored = checkpointer.restore(abstract_like(state), data_iter)
        tracker = common.make_tracker(config, run_dir, job_type="pretrain")
        if restored is not None:
            state, start = restored
            tracker.truncate_after(start)
            log.info("resumed from step %d", start)
        else:
            entropy = unigram_entropy((tokenizer.encode(d) for d in val_docs),
                                      tokenizer.vocab_size)
            tracker.summary(unigram_entropy=entropy, n_params=model_cfg.num_params(),
                            train_documents=len(train_docs))
            log.info("validation unigram entropy: %.3f nats/token", entropy)
        if bad_records.count:
            tracker.summary(bad_records=bad_records.count)

        val = eval_batches(val_docs, tokenizer, seq_len=seq_len, batch_size=local_batch,
                           max_batches=config.train.eval_batches)
        evaluate = make_evaluator(model, val, put_batch, tokenizer.token_byte_lengths())
        sample = make_sample_fn(model, tokenizer, config.train, mesh, rules)

        peak = config.train.peak_flops or peak_flops_per_device(jax.devices()[0].device_kind)
        tokens_per_step = global_batch * seq_len
        loop_cfg = LoopConfig(
            total_steps=steps, log_every=config.train.log_every,
            eval_every=config.train.eval_every, sample_every=config.train.sample_every,
            on_nonfinite=config.train.on_nonfinite, tokens_per_step=tokens_per_step,
            flops_per_step=model_cfg.flops_per_token(seq_len) * tokens_per_step,
            peak_flops=peak * jax.device_count())
        final_metrics: dict[str, float] = {}

        def evaluate_and_keep(params):
            final_metrics.update(evaluate(params))
            return final_metrics

        try:
            run_training(state, step_fn, data_iter, put_batch, loop_cfg,
                         checkpointer=checkpointer, data_iter=data_iter, tracker=tracker,
                         evaluate=evaluate_and_keep, sample=sample)
        finally:
            checkpointer.close()
            tracker.finish()
    return final_metrics
