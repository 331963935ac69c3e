"""The shared run set-up: starting from a parent run or a Hub folder puts the params straight
into the target shardings and records the parent; config mistakes are one-line errors."""

import json
from pathlib import Path

import jax
import numpy as np
import pytest

from llm_jax.checkpoints.restore import restore_params
from llm_jax.checkpoints.sources import ModelSource, abstract_params
from llm_jax.config import get_experiment_config
from llm_jax.errors import ConfigError, RunError
from llm_jax.models.config import ModelConfig
from llm_jax.train.setup import optimizer_from_config, start_run
from tests.helpers import TINY_RUN_ARGS, corpus_args

ROOT = Path(__file__).resolve().parents[2]
FSDP = ["--config.mesh.data=1", "--config.mesh.fsdp=-1", "--config.mesh.rules=fsdp"]


def _config(corpus, *overrides):
    return get_experiment_config(str(ROOT / "experiments/pretrain_tiny.py"),
                                 [*TINY_RUN_ARGS, *corpus_args(corpus), *overrides])


def _parent_params(parent: Path):
    cfg = ModelConfig(**json.loads((parent / "config.json").read_text())["model"])
    params, step = restore_params(parent / "checkpoints", abstract_params(cfg))
    return params, step


def test_start_from_parent_is_sharded_and_equal(tiny_pretrained_run, corpus, tmp_path):
    parent = tiny_pretrained_run
    config = _config(corpus, *FSDP, f"--config.init.from_run={parent}")
    with start_run(config, tmp_path / "child", stage="sft") as run:
        tokenizer = run.parent_tokenizer()
        model_cfg = run.model_config(tokenizer.vocab_size)
        optimizer, _ = optimizer_from_config(config, 10)
        state, _, start = run.init_state(model_cfg, optimizer)
    assert start == 0 and int(state.step) == 0
    expected, parent_step = _parent_params(parent)
    embedding = state.params["embed"]["embedding"]
    assert len(embedding.sharding.device_set) == 8
    shard_bytes = {s.data.nbytes for s in embedding.addressable_shards}
    assert shard_bytes == {embedding.nbytes // 8}  # each device holds 1/8, no full copy
    for got, want in zip(jax.tree.leaves(state.params), jax.tree.leaves(expected)):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    saved = json.loads((tmp_path / "child" / "config.json").read_text())
    assert saved["parent"] == {"kind": "run", "path": str(parent.absolute()),
                               "step": parent_step}
    assert saved["model"] == json.loads((parent / "config.json").read_text())["model"]
    assert (tmp_path / "child" / "tokenizer.model").read_bytes() == \
        (parent / "tokenizer.model").read_bytes()


def test_continued_pretraining_from_parent_trains(tiny_pretrained_run, corpus, tmp_path):
    from llm_jax.cli import main

    run_dir = tmp_path / "continued"
    argv = ["train", str(ROOT / "experiments/pretrain_tiny.py"), "--workdir", str(run_dir),
            *TINY_RUN_ARGS, *corpus_args(corpus), "--config.train.steps=2",
            "--config.train.sample_every=0", f"--config.init.from_run={tiny_pretrained_run}"]
    assert main(argv) == 0
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    parent_rows = [json.loads(x) for x in
                   (tiny_pretrained_run / "metrics.jsonl").read_text().splitlines()]
    first = next(r["loss"] for r in rows if "loss" in r)
    parent_first = next(r["loss"] for r in parent_rows if "loss" in r)
    assert first < parent_first  # starts from trained weights, not from scratch


def test_model_source_errors_are_named(tiny_pretrained_run, tmp_path):
    with pytest.raises(RunError, match="not a run directory"):
        ModelSource.parse(from_run=str(tmp_path))
    with pytest.raises(RunError, match="init.from_step=99: .* has checkpoints at"):
        ModelSource.parse(from_run=str(tiny_pretrained_run), step=99)
    with pytest.raises(RunError, match="both set"):
        ModelSource.parse(from_run="a", from_hf="b")


def test_stage_without_a_parent_is_refused(corpus, tmp_path):
    with start_run(_config(corpus), tmp_path / "r", stage="sft") as run:
        with pytest.raises(ConfigError, match="init.from_run"):
            run.parent_tokenizer()
