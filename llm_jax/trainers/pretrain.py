"""Pretraining: next-token prediction on packed documents.

    llm-jax train experiments/pretrain_tiny.py [--config.train.steps=2000] [--workdir DIR]

What is particular to this stage: the corpus (files, a HF dataset or the default corpus), the
tokenizer it trains, and the unigram baseline its validation loss must beat. Everything else
is the shared run set-up (`train/setup.py`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import jax
import ml_collections

from llm_jax.data.corpus import default_corpus
from llm_jax.data.pipeline import eval_batches, train_iterator
from llm_jax.data.sources import BadRecordStats, hf_documents, read_documents
from llm_jax.data.stats import unigram_entropy
from llm_jax.data.tokenizer import Tokenizer
from llm_jax.errors import DataError
from llm_jax.eval.heldout import make_lm_evaluator
from llm_jax.eval.samples import make_sample_fn
from llm_jax.generate.sampler import Sampler, SamplingConfig
from llm_jax.losses.lm import make_lm_loss
from llm_jax.models.transformer import Transformer
from llm_jax.runs import RunDir
from llm_jax.train.loop import batch_iteration
from llm_jax.train.setup import local_batch_size, optimizer_from_config, start_run
from llm_jax.train.step import make_train_step

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- corpus


def load_corpus(data: ml_collections.ConfigDict,
                stats: BadRecordStats | None = None) -> tuple[list[str], list[str]]:
    """(train documents, validation documents) from files, a HF dataset, or the default."""
    skip = data.skip_bad
    read = lambda paths: list(read_documents(paths, text_field=data.text_field,  # noqa: E731
                                             skip_bad=skip, stats=stats))
    if data.hf_dataset:
        docs = list(hf_documents(data.hf_dataset, data.hf_split, text_field=data.text_field,
                                 config_name=data.hf_config, limit=data.hf_max_documents))
        val = read(data.val_paths) if data.val_paths else []
    elif data.train_paths:
        docs = read(data.train_paths)
        val = read(data.val_paths) if data.val_paths else []
    else:
        train_files, val_files = default_corpus()
        docs = list(read_documents([str(p) for p in train_files]))
        val = list(read_documents([str(p) for p in val_files]))
    if not val:
        # Hold out the last 1% of documents (at least one) so there is always a validation set.
        if len(docs) < 2:
            raise DataError("the training data has a single document; pass a validation set "
                            "with --config.data.val_paths=...")
        n_val = max(1, len(docs) // 100)
        docs, val = docs[:-n_val], docs[-n_val:]
    return docs, val


def _capped(docs: Iterable[str], max_chars: int) -> Iterator[str]:
    total = 0
    for doc in docs:
        yield doc
        total += len(doc)
        if total >= max_chars:
            return


def get_tokenizer(data: ml_collections.ConfigDict, run_dir: RunDir,
                  train_docs: list[str]) -> Tokenizer:
    """The run's tokenizer: a given .model file, the one already in the run dir, or a new one
    trained on (a capped prefix of) the training documents and saved in the run dir."""
    if data.tokenizer_path:
        return Tokenizer.load(data.tokenizer_path)
    if not run_dir.tokenizer.exists() and jax.process_index() == 0:
        Tokenizer.train(_capped(train_docs, data.tokenizer_train_chars), data.vocab_size,
                        run_dir.tokenizer)
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("tokenizer")  # the run dir is shared storage
    return Tokenizer.load(run_dir.tokenizer)


# ---------------------------------------------------------------------------- main


def main(config: ml_collections.ConfigDict, run_dir: Path) -> dict[str, float]:
    """Train (or resume) the run in `run_dir`; returns the final evaluation metrics."""
    with start_run(config, run_dir, stage="pretrain") as run:
        # --- data
        bad_records = BadRecordStats()
        train_docs, val_docs = load_corpus(config.data, bad_records)
        tokenizer = get_tokenizer(config.data, run.dir, train_docs)
        seq_len, global_batch = config.data.seq_len, config.data.batch_size
        local_batch = local_batch_size(global_batch)
        data_iter = train_iterator(
            train_docs, tokenizer, seq_len=seq_len, batch_size=local_batch,
            seed=config.data.shuffle_seed, shard_index=jax.process_index(),
            shard_count=jax.process_count())

        # --- model, optimizer, state
        model_cfg = run.model_config(tokenizer.vocab_size)
        model = Transformer(model_cfg)
        optimizer, schedule = optimizer_from_config(config, config.train.steps)
        state, shardings, start = run.init_state(model_cfg, optimizer, data_iter=data_iter)
        if start == 0:
            entropy = unigram_entropy((tokenizer.encode(d) for d in val_docs),
                                      tokenizer.vocab_size)
            run.tracker.summary(unigram_entropy=entropy, train_documents=len(train_docs))
            log.info("validation unigram entropy: %.3f nats/token", entropy)
        if bad_records.count:
            run.tracker.summary(bad_records=bad_records.count)

        # --- update step
        def apply(params, tokens, positions, segment_ids):
            return model.apply({"params": params}, tokens, positions, segment_ids)

        train_step = make_train_step(
            make_lm_loss(apply), optimizer, grad_accum=config.optim.grad_accum,
            skip_nonfinite=config.train.on_nonfinite == "skip", lr_schedule=schedule)
        step_fn = run.jit_step(train_step, shardings)

        # --- evaluations
        val = eval_batches(val_docs, tokenizer, seq_len=seq_len, batch_size=local_batch,
                           max_batches=config.train.eval_batches)
        evaluate = make_lm_evaluator(apply, val, run.put_batch, tokenizer.token_byte_lengths())
        t = config.train
        sampling = SamplingConfig(max_new_tokens=t.sample_tokens,
                                  temperature=t.sample_temperature, top_p=t.sample_top_p,
                                  stop_tokens=(tokenizer.eos_id,), pad_id=tokenizer.pad_id)
        prompts = list(t.sample_prompts)
        sample = make_sample_fn(Sampler(model, mesh=run.mesh, rules=run.rules), tokenizer,
                                prompts, [[tokenizer.bos_id, *tokenizer.encode(p)]
                                          for p in prompts], sampling)

        # --- loop
        tokens_per_step = global_batch * seq_len
        loop_cfg = run.loop_config(
            tokens_per_iteration=tokens_per_step,
            flops_per_iteration=model_cfg.flops_per_token(seq_len) * tokens_per_step)
        final_metrics: dict[str, float] = {}

        def evaluate_and_keep(params):
            final_metrics.update(evaluate(params))
            return final_metrics

        run.train(state, batch_iteration(step_fn, data_iter, run.put_batch), loop_cfg,
                  start=start, data_iter=data_iter, evaluate=evaluate_and_keep, sample=sample)
    return final_metrics
