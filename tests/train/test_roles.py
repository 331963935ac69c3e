"""Model roles: the reference is the parent's params on the training mesh, and is not loaded
at all when its KL weight is 0."""

from pathlib import Path

import jax
import numpy as np

from llm_jax.checkpoints.sources import ModelSource
from llm_jax.config import get_experiment_config
from llm_jax.rl.roles import reference_role
from llm_jax.train.setup import start_run
from tests.helpers import TINY_RUN_ARGS, corpus_args

ROOT = Path(__file__).resolve().parents[2]


def test_reference_is_the_parent_and_skipped_at_zero_kl(tiny_pretrained_run, corpus, tmp_path,
                                                         monkeypatch):
    config = get_experiment_config(
        str(ROOT / "experiments/pretrain_tiny.py"),
        [*TINY_RUN_ARGS, *corpus_args(corpus), "--config.mesh.data=1", "--config.mesh.fsdp=-1",
         "--config.mesh.rules=fsdp", f"--config.init.from_run={tiny_pretrained_run}"])
    with start_run(config, tmp_path / "child", stage="rl") as run:
        model_cfg = run.model_config(run.parent_tokenizer().vocab_size)
        reference = reference_role(run, model_cfg, kl_coef=0.04)
        parent = run.source.load_params(model_cfg)
        for got, want in zip(jax.tree.leaves(reference.params), jax.tree.leaves(parent)):
            np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
        embedding = reference.params["embed"]["embedding"]
        assert {s.data.nbytes for s in embedding.addressable_shards} == {embedding.nbytes // 8}

        def no_loading(*args, **kwargs):
            raise AssertionError("the reference was loaded although kl_coef=0")

        monkeypatch.setattr(ModelSource, "load_params", no_loading)
        assert reference_role(run, model_cfg, kl_coef=0.0) is None
