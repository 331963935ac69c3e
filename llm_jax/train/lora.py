"""Training LoRA adapters on a frozen base: the pieces a trainer and `export` need.

    lora = LoraTraining(cfg, base, base_shardings, batch_sharding)   # built by Run.init_state
    step_fn = lora.jit_step(make_train_step(lora.loss(loss_fn), optimizer), shardings)
    evaluate(lora.merged(state.params))                                # plain params

The train state's `params` are the adapters alone, so the optimizer's moments (and the
checkpoints) are adapter-sized. The base is a jit argument of every step, never donated and
never saved with the run: a resumed run and `export` re-read it from the parent recorded in
`config.json` (a Hub folder or a parent run's checkpoint), which is what keeps a LoRA run's
checkpoints tiny.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path

import jax
import ml_collections
from flax import linen as nn

from llm_jax.errors import ConfigError, RunError
from llm_jax.load import ModelSource
from llm_jax.models.config import ModelConfig
from llm_jax.models.lora import LoraConfig, adapted, adapter_init_fn, merge
from llm_jax.models.transformer import Transformer
from llm_jax.runs import RunDir
from llm_jax.train.checkpoint import restore_params
from llm_jax.train.step import jit_train_step


def lora_config(config: ml_collections.ConfigDict | Mapping) -> LoraConfig:
    """`LoraConfig` from a config's `lora` section (absent = no adapters)."""
    section = config.get("lora") if hasattr(config, "get") else None
    if section is None:
        return LoraConfig()
    fields = section.to_dict() if hasattr(section, "to_dict") else dict(section)
    try:
        return LoraConfig(rank=int(fields["rank"]), alpha=float(fields["alpha"]),
                          dropout=float(fields["dropout"]), targets=tuple(fields["targets"]))
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"lora: {e}") from None


def model_adapter_init(model: Transformer, cfg: LoraConfig) -> Callable[[jax.Array], dict]:
    """`init(rng) -> boxed adapters` for `model`'s targeted kernels."""
    boxed = jax.eval_shape(lambda r: model.init(r, jax.numpy.zeros((1, 1), "int32"))["params"],
                           jax.random.PRNGKey(0))
    try:
        return adapter_init_fn(boxed, cfg)
    except ValueError as e:
        raise ConfigError(f"lora: {e}") from None


@dataclasses.dataclass
class LoraTraining:
    """The frozen base with its shardings, and how a stage's loss and step use it."""

    cfg: LoraConfig
    base: dict
    base_shardings: dict
    batch_sharding: jax.sharding.Sharding

    def loss(self, loss_fn: Callable) -> Callable:
        """`loss_fn(params, batch, rng)` of the full model → `(adapters, batch, rng, base)`:
        the model runs on the frozen base with the adapters beside its kernels. Dropout draws
        from a key split off the step's rng, so the stage's own randomness is unchanged."""

        def lora_loss(adapters, batch, rng, base):
            drop_rng, rng = jax.random.split(rng)
            with adapted(adapters, self.cfg, drop_rng):
                return loss_fn(jax.lax.stop_gradient(base), batch, rng)

        return lora_loss

    def jit_step(self, train_step: Callable, shardings) -> Callable:
        """`(state, batch) -> (state, metrics)` compiled with the base as a frozen input."""
        return jit_train_step(train_step, shardings, self.batch_sharding, frozen=(self.base,),
                              frozen_shardings=(self.base_shardings,))

    def merged(self, adapters) -> dict:
        """Plain params W + s·A·B, laid out like the base (for evals, sampling, export)."""
        if not hasattr(self, "_merge"):
            self._merge = jax.jit(lambda b, a: merge(b, a, self.cfg),
                                  out_shardings=self.base_shardings)
        return self._merge(self.base, adapters)


def is_lora_run(run_dir: str | Path) -> bool:
    """Whether `run_dir` is a run directory whose params are LoRA adapters."""
    run = RunDir(run_dir)
    return run.exists() and lora_config(run.read_config()).rank > 0


def lora_run_params(run_dir: str | Path, step: int | None = None):
    """(model, merged params, step) of a LoRA run: its parent's params (as `config.json`
    records them) with the run's newest (or `step`) adapters merged in, on one device."""
    run = RunDir(run_dir)
    saved = run.read_config()
    cfg = lora_config(saved)
    model_cfg = ModelConfig(**saved["model"])
    model = Transformer(model_cfg)
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    shapes = jax.eval_shape(lambda r: nn.meta.unbox(model_adapter_init(model, cfg)(r)),
                            jax.random.PRNGKey(0))
    target = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=device),
                          shapes)
    adapters, step = restore_params(run.checkpoints, target, step)
    parent = base_source(saved, run_dir)
    base = parent.load_params(model_cfg)
    return model, jax.jit(lambda b, a: merge(b, a, cfg))(base, adapters), step


def base_source(saved: Mapping, run_dir: str | Path) -> ModelSource:
    """The `ModelSource` of a LoRA run's frozen base: the parent its `config.json` records."""
    parent = dict(saved.get("parent") or {})
    if parent.get("kind") not in ("run", "hf"):
        raise RunError(f"{run_dir}: a LoRA run needs its parent model, but config.json "
                       f"records none ({parent or 'no parent'})")
    if not Path(parent["path"]).exists():
        raise RunError(f"{run_dir}: the base model of this LoRA run, {parent['path']}, is gone; "
                       "the run's checkpoints hold only the adapters")
    return ModelSource(parent["kind"], parent["path"], parent.get("step"))
