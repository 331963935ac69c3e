"""SFT with LoRA end to end: 2 steps of adapters on the frozen tiny pretraining run, a resume,
and `export` merging the adapters into plain weights that give the same logits."""

import json

import jax
import jax.numpy as jnp
import numpy as np

from llm_jax.checkpoints.sources import ModelSource, load_model
from llm_jax.cli import main
from llm_jax.models.lora import adapted, lora_config, model_adapter_init
from llm_jax.models.transformer import Transformer
from tests.trainers.test_sft_run import EXPERIMENT, TINY, _rows

LORA = ["--config.lora.rank=4", "--config.lora.alpha=8.0", "--config.optim.lr=1e-2"]


def _adapters(run_dir, saved):
    """The run's newest adapters, read back from its checkpoint on one device."""
    from flax import linen as nn

    from llm_jax.checkpoints.restore import restore_params
    from llm_jax.models.config import ModelConfig

    model = Transformer(ModelConfig(**saved["model"]))
    shapes = jax.eval_shape(lambda r: nn.meta.unbox(
        model_adapter_init(model, lora_config(saved))(r)), jax.random.PRNGKey(0))
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    target = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=device),
                          shapes)
    return restore_params(run_dir / "checkpoints", target)


def test_sft_lora_trains_adapters_resumes_and_exports_merged(tiny_pretrained_run, test_corpus,
                                                             tmp_path):
    run_dir = tmp_path / "sft_lora"
    argv = ["train", EXPERIMENT, "--workdir", str(run_dir), *TINY, *LORA,
            f"--config.init.from_run={tiny_pretrained_run}",
            f"--config.sft.books={test_corpus / 'persuasion.txt'}"]
    assert main(argv) == 0
    assert [r["step"] for r in _rows(run_dir) if "loss" in r] == [1, 2]
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["lora"]["rank"] == 4 and saved["parent"]["kind"] == "run"

    # The checkpoint holds the adapters (B moved off zero), not a copy of the base.
    adapters, step = _adapters(run_dir, saved)
    assert step == 2
    b = [x for p, x in jax.tree.flatten_with_path(adapters)[0] if p[-1].key == "lora_b"]
    assert b and all(float(jnp.abs(x).max()) > 0 for x in b)

    # Resume: one more step continues from the adapters saved at step 2.
    argv_more = [a for a in argv if not a.startswith("--config.train.steps=")]
    assert main([*argv_more, "--config.train.steps=3"]) == 0
    assert [r["step"] for r in _rows(run_dir) if "loss" in r] == [1, 2, 3]
    adapters, step = _adapters(run_dir, saved)
    assert step == 3

    # export: plain weights whose logits equal the frozen base run with the adapters.
    out = tmp_path / "exported"
    assert main(["export", str(run_dir), str(out)]) == 0
    model, merged, _, _ = load_model(hf=out)
    parent = ModelSource("run", str(tiny_pretrained_run), saved["parent"]["step"])
    base = parent.load_params(model.cfg)
    tokens = jax.random.randint(jax.random.PRNGKey(0), (2, 16), 0, model.cfg.vocab_size)
    with adapted(adapters, lora_config(saved)):
        expected = model.apply({"params": base}, tokens)
    got = model.apply({"params": merged}, tokens)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)
    assert float(jnp.abs(got - model.apply({"params": base}, tokens)).max()) > 1e-4
    # sample and chat read a LoRA run the same way.
    assert main(["sample", str(run_dir), "--prompt", "Hi", "--max-new-tokens", "3",
                 "--temperature", "0"]) == 0
