"""Pretraining: next-token prediction on packed documents of a corpus (files, a HF dataset
or the default corpus), with the tokenizer it trains and a unigram baseline to beat.

    llm-jax train experiments/pretrain_tiny.py [--config.train.steps=2000] [--workdir DIR]
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import jax
import ml_collections

from llm_jax.data.corpus import default_corpus
from llm_jax.data.global_batches import GlobalBatchIterator
from llm_jax.data.index import (
    ConcatIndex,
    IndexView,
    RecordIndex,
    build_index,
    memory_index,
    split_tail,
)
from llm_jax.data.pipeline import eval_batches, train_documents_sample, train_iterator
from llm_jax.data.records import text_field
from llm_jax.data.sources import BadRecordStats, hf_documents
from llm_jax.data.splits import DEFAULT_HELDOUT_FRACTION
from llm_jax.data.stats import unigram_entropy
from llm_jax.data.tokenizer import Tokenizer
from llm_jax.errors import ConfigError, DataError
from llm_jax.eval.samples import make_sample_fn
from llm_jax.generate.sampler import SamplingConfig
from llm_jax.recipes.generated import mix_generated
from llm_jax.runs import RunDir
from llm_jax.train.setup import start_run

log = logging.getLogger(__name__)

Corpus = RecordIndex | IndexView | ConcatIndex  # documents by number; Parquet read lazily


# ---------------------------------------------------------------------------- corpus


def load_corpus(data: ml_collections.ConfigDict, stats: BadRecordStats | None = None
                ) -> tuple[Corpus, Corpus]:
    """(train, validation) corpora: indexes over files (Parquet read lazily, row group by
    row group), a HF dataset held in memory, or the default corpus."""

    def index(paths):
        corpus = build_index(list(paths), validate=text_field(data.text_field),
                             skip_bad=data.skip_bad, stats=stats, columns=(data.text_field,))
        if not len(corpus):
            raise DataError(f"{', '.join(paths)}: the corpus is empty (no non-empty documents)")
        return corpus

    if data.hf_dataset:
        train = memory_index(list(hf_documents(
            data.hf_dataset, data.hf_split, text_field=data.text_field,
            config_name=data.hf_config, limit=data.hf_max_documents)))
        if not len(train):
            raise DataError(f"hf dataset {data.hf_dataset}: no non-empty documents")
        val = index(data.val_paths) if data.val_paths else None
    elif data.train_paths:
        train = index(data.train_paths)
        val = index(data.val_paths) if data.val_paths else None
    else:
        train_files, val_files = default_corpus()
        train, val = index([str(p) for p in train_files]), index([str(p) for p in val_files])
    if val is None:
        # Hold out the last 1% of documents (at least one) so there is always a validation set.
        if len(train) < 2:
            raise DataError("the training data has a single document; pass a validation set "
                            "with --config.data.val_paths=...")
        train, val = split_tail(train, max(1, len(train) // 100))
    return train, val


def with_generated(data: ml_collections.ConfigDict, corpus: Corpus) -> Corpus:
    """The training documents: the corpus plus `data.generated` text (validation and the
    tokenizer stay the corpus' own, so bits per byte measure prose as before)."""
    try:
        return mix_generated(corpus, data.generated.to_dict(), levels=data.generated_levels,
                             seed=data.shuffle_seed, heldout_fraction=DEFAULT_HELDOUT_FRACTION)
    except ValueError as e:
        raise ConfigError(f"data.generated: {e}") from None


def _corpus_name(data: ml_collections.ConfigDict) -> str:
    if data.hf_dataset:
        return f"hf dataset {data.hf_dataset}"
    return ", ".join(data.train_paths) if data.train_paths else "the default corpus"


def get_tokenizer(data: ml_collections.ConfigDict, run_dir: RunDir, train: Corpus) -> Tokenizer:
    """The run's tokenizer: given, already in the run dir, or trained by process 0 on the corpus."""
    if data.tokenizer_path:
        return Tokenizer.load(data.tokenizer_path)
    if not run_dir.tokenizer.exists() and jax.process_index() == 0:
        texts = train_documents_sample(train, data.tokenizer_train_chars, seed=data.shuffle_seed)
        Tokenizer.train(texts, data.vocab_size, run_dir.tokenizer,
                        corpus_name=_corpus_name(data))
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("tokenizer")  # the run dir is shared storage
    return Tokenizer.load(run_dir.tokenizer)


def documents(corpus: Corpus) -> Iterator[str]:
    """The corpus' documents in order (records its validator dropped are skipped)."""
    return (doc for doc in (corpus[i] for i in range(len(corpus))) if doc is not None)


def data_iterator(data: ml_collections.ConfigDict, train: Corpus, tokenizer: Tokenizer
                  ) -> GlobalBatchIterator:
    """This host's rows of the run's global training batches: the same global batches, and
    the same saved position, whatever the number of hosts."""
    return train_iterator(train, tokenizer, seq_len=data.seq_len, batch_size=data.batch_size,
                          seed=data.shuffle_seed, host_index=jax.process_index(),
                          host_count=jax.process_count())


# ---------------------------------------------------------------------------- main


def main(config: ml_collections.ConfigDict, run_dir: Path) -> dict[str, float]:
    """Train (or resume) the run in `run_dir`; returns the final evaluation metrics."""
    with start_run(config, run_dir, stage="pretrain") as run:
        # --- data
        bad_records = BadRecordStats()
        corpus, val_docs = load_corpus(config.data, bad_records)
        # Continued pretraining from a parent run or Hub folder keeps the parent's tokenizer.
        tokenizer = (get_tokenizer(config.data, run.dir, corpus)
                     if run.source.kind == "random" else run.parent_tokenizer())
        train = with_generated(config.data, corpus)
        seq_len, global_batch = config.data.seq_len, config.data.batch_size
        data_iter = data_iterator(config.data, train, tokenizer)

        val = eval_batches(val_docs, tokenizer, seq_len=seq_len, batch_size=global_batch,
                           max_batches=config.train.eval_batches,
                           host_index=jax.process_index(), host_count=jax.process_count())

        def started(start: int) -> None:  # the baseline a model must beat, once
            if start == 0:
                entropy = unigram_entropy((tokenizer.encode(d) for d in documents(val_docs)),
                                          tokenizer.vocab_size)
                run.tracker.summary(unigram_entropy=entropy, train_documents=len(train))
                log.info("validation unigram entropy: %.3f nats/token", entropy)
            if bad_records.count:
                run.tracker.summary(bad_records=bad_records.count)

        t = config.train
        sampling = SamplingConfig(max_new_tokens=t.sample_tokens,
                                  temperature=t.sample_temperature, top_p=t.sample_top_p,
                                  stop_tokens=(tokenizer.eos_id,), pad_id=tokenizer.pad_id)
        prompts = list(t.sample_prompts)
        prompt_ids = [[tokenizer.bos_id, *tokenizer.encode(p)] for p in prompts]
        return run.train_lm(
            run.model_config(tokenizer.vocab_size), data_iter, val, tokenizer, started=started,
            sample=lambda sampler: make_sample_fn(sampler, tokenizer, prompts, prompt_ids,
                                                  sampling))
