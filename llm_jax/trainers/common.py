"""Pieces every trainer shares: run directory, corpus, tokenizer, mesh, tracker, batches.

Trainers (and the CLI) are the only code that reads the config tree; these helpers turn its
sections into the plain arguments the library below expects.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from pathlib import Path

import jax
import ml_collections
import numpy as np
from flax import linen as nn

from llm_jax.config import config_differences, save_config, to_dict
from llm_jax.data.corpus import default_corpus
from llm_jax.data.errors import DataError
from llm_jax.data.sources import BadRecordStats, hf_documents, read_documents
from llm_jax.data.tokenizer import TOKENIZER_FILE, Tokenizer
from llm_jax.models.config import ModelConfig
from llm_jax.sharding.mesh import make_mesh, maybe_initialize_distributed
from llm_jax.sharding.rules import rules as rule_set
from llm_jax.tracking.tracker import Tracker, TrackerConfig
from llm_jax.train.optim import OptimConfig

log = logging.getLogger(__name__)


def start_run(config: ml_collections.ConfigDict, run_dir: Path) -> None:
    """Join the multi-host job if there is one, create the run directory and write
    `config.json` (warning about changes when an existing run resumes)."""
    maybe_initialize_distributed()
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "config.json"
    if path.exists():
        diffs = config_differences(json.loads(path.read_text()), to_dict(config))
        if diffs:
            log.warning("resuming %s with a changed config:\n  %s", run_dir, "\n  ".join(diffs))
    if jax.process_index() == 0:
        save_config(config, path)


def load_corpus(data: ml_collections.ConfigDict,
                stats: BadRecordStats | None = None) -> tuple[list[str], list[str]]:
    """(train documents, validation documents) from files, a HF dataset, or the default."""
    skip = data.skip_bad
    if data.hf_dataset:
        docs = list(hf_documents(data.hf_dataset, data.hf_split, text_field=data.text_field,
                                 config_name=data.hf_config, limit=data.hf_max_documents))
        val = list(read_documents(data.val_paths, text_field=data.text_field, skip_bad=skip,
                                  stats=stats)) if data.val_paths else []
    elif data.train_paths:
        docs = list(read_documents(data.train_paths, text_field=data.text_field, skip_bad=skip,
                                   stats=stats))
        val = list(read_documents(data.val_paths, text_field=data.text_field, skip_bad=skip,
                                  stats=stats)) if data.val_paths else []
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


def get_tokenizer(data: ml_collections.ConfigDict, run_dir: Path,
                  train_docs: list[str]) -> Tokenizer:
    """The run's tokenizer: a given .model file, the one already in the run dir, or a new one
    trained on (a capped prefix of) the training documents and saved in the run dir."""
    if data.tokenizer_path:
        return Tokenizer.load(data.tokenizer_path)
    path = run_dir / TOKENIZER_FILE
    if not path.exists() and jax.process_index() == 0:
        Tokenizer.train(_capped(train_docs, data.tokenizer_train_chars), data.vocab_size, path)
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("tokenizer")  # the run dir is shared storage
    return Tokenizer.load(path)


def _capped(docs: list[str], max_chars: int):
    total = 0
    for doc in docs:
        yield doc
        total += len(doc)
        if total >= max_chars:
            return


def model_config(config: ml_collections.ConfigDict, tokenizer: Tokenizer) -> ModelConfig:
    cfg = ModelConfig(**config.model.to_dict())
    if cfg.vocab_size != tokenizer.vocab_size:
        raise DataError(f"model.vocab_size={cfg.vocab_size} but the tokenizer "
                        f"{tokenizer.model_path} has {tokenizer.vocab_size} tokens")
    return cfg


def optim_config(config: ml_collections.ConfigDict) -> OptimConfig:
    fields = {f.name for f in dataclasses.fields(OptimConfig)}
    return OptimConfig(**{k: v for k, v in config.optim.to_dict().items() if k in fields})


def mesh_and_rules(config: ml_collections.ConfigDict):
    shape = {k: v for k, v in config.mesh.to_dict().items() if k != "rules"}
    return make_mesh(shape), rule_set(config.mesh.rules)


def make_tracker(config: ml_collections.ConfigDict, run_dir: Path, job_type: str) -> Tracker:
    w = config.wandb
    cfg = TrackerConfig(project=w.project, name=config.run.name or run_dir.name,
                        group=w.group or None, job_type=job_type, mode=w.mode,
                        entity=w.entity or None, tags=tuple(w.tags))
    return Tracker(run_dir, cfg, to_dict(config), is_main_process=jax.process_index() == 0)


def local_batch_size(global_batch: int) -> int:
    n = jax.process_count()
    if global_batch % n:
        raise ValueError(f"data.batch_size={global_batch} is not divisible by {n} hosts")
    return global_batch // n


def make_put_batch(sharding):
    """Host batch (this process' rows) → global arrays sharded over the mesh."""

    def put(batch):
        return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
                for k, v in batch.items()}

    return put


def mesh_context(mesh, rules):
    """`with mesh_context(mesh, rules):` makes logical constraints resolve on this mesh."""
    stack = contextlib.ExitStack()
    stack.enter_context(jax.set_mesh(mesh))
    stack.enter_context(nn.logical_axis_rules(rules))
    return stack
