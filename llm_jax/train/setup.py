"""The one stage scaffold every trainer calls: mesh, params, state, step, checkpoints, loop.

    with start_run(config, run_dir, stage="sft") as run:
        optimizer, schedule = run.optimizer()
        state, shardings, start = run.init_state(model_cfg, optimizer, data_iter=data_iter)
        step_fn, full_params = run.update_step(loss_fn, optimizer, schedule, shardings)
        return run.train(state, batch_iteration(step_fn, data_iter, run.put_batch), ...)"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from llm_jax.checkpoints.sources import (
    POLICY_PARAMS,
    ModelSource,
    base_source,
    load_tokenizer,
    model_fields,
)
from llm_jax.config import config_differences, to_dict
from llm_jax.errors import ConfigError, DataError, RunInUseError
from llm_jax.models.config import ModelConfig
from llm_jax.models.lora import LoraConfig, lora_config, model_adapter_init
from llm_jax.models.transformer import Transformer
from llm_jax.runs import RunDir, RunLock
from llm_jax.sharding.mesh import (
    batch_sharding,
    check_params_sharded,
    make_mesh,
    maybe_initialize_distributed,
    mesh_context,
)
from llm_jax.sharding.rules import rules as rule_set
from llm_jax.tracking.tracker import Tracker, TrackerConfig
from llm_jax.train.checkpoint import Checkpointer
from llm_jax.train.compile_cache import use_compilation_cache
from llm_jax.train.init import init_train_state, state_from_params, state_shardings
from llm_jax.train.loop import LoopConfig, run_training
from llm_jax.train.lora import LoraTraining
from llm_jax.train.optim import OptimConfig, make_optimizer
from llm_jax.train.state import TrainState
from llm_jax.train.step import jit_train_step, make_train_step

log = logging.getLogger(__name__)


def model_init_fn(model: Transformer) -> Callable[[jax.Array], dict]:
    """`init(rng) -> boxed params` of a transformer (shapes only depend on the config)."""
    return lambda rng: model.init(rng, jnp.zeros((1, 1), jnp.int32))["params"]


def optimizer_from_config(config: ml_collections.ConfigDict, total_updates: int):
    """(optax optimizer, lr schedule) from `config.optim` for `total_updates` updates."""
    fields = {f.name for f in dataclasses.fields(OptimConfig)}
    try:
        optim = OptimConfig(**{k: v for k, v in config.optim.to_dict().items() if k in fields})
    except (TypeError, ValueError) as e:
        raise ConfigError(f"optim: {e}") from None
    return make_optimizer(optim, total_updates)


class Run:
    """One stage's run: directory, mesh, where params start, checkpoints and tracker."""

    def __init__(self, config: ml_collections.ConfigDict, run_dir: str | Path, stage: str):
        self.config = config
        self.dir = RunDir(run_dir)
        self.stage = stage
        shape = {k: v for k, v in config.mesh.to_dict().items() if k != "rules"}
        try:
            self.mesh = make_mesh(shape)
            self.rules = rule_set(config.mesh.rules)
        except (KeyError, ValueError) as e:
            raise ConfigError(f"mesh: {e.args[0]}") from None
        self.batch_sharding = batch_sharding(self.mesh)
        init = config.get("init")
        self.source = (ModelSource() if init is None else
                       ModelSource.parse(init.from_run, init.from_hf, init.from_step))
        train = config.train
        self.checkpointer = Checkpointer(self.dir.checkpoints, save_every=train.checkpoint_every,
                                         keep=train.keep_checkpoints)
        self.tracker: Tracker | None = None
        self._saved = self.dir.read_config() if self.dir.exists() else None
        self._resuming = bool(self.checkpointer.steps())

    # ------------------------------------------------------------------ model and tokenizer

    def model_config(self, vocab_size: int) -> ModelConfig:
        """The architecture: saved by this run if it resumes, else the parent's (with this
        config's compute fields), else `config.model`. Checked against the tokenizer."""
        overrides = self.config.model.to_dict() if "model" in self.config else {}
        if self._resuming and self._saved and "model" in self._saved:
            cfg = ModelConfig(**self._saved["model"])
        elif self.source.kind != "random":
            cfg = self.source.model_config(overrides)
        else:
            try:
                cfg = ModelConfig(**overrides)
            except (TypeError, ValueError) as e:
                raise ConfigError(f"model: {e}") from None
            if cfg.vocab_size != vocab_size:
                raise DataError(f"model.vocab_size={cfg.vocab_size} but the tokenizer has "
                                f"{vocab_size} tokens")
        if vocab_size > cfg.vocab_size:
            raise DataError(f"the tokenizer has {vocab_size} tokens but the model only "
                            f"{cfg.vocab_size}")
        return cfg

    def parent_tokenizer(self):
        """The tokenizer of the parent run or Hub folder, copied into this run directory."""
        if self.source.kind == "random" and not self._resuming:
            raise ConfigError("this stage starts from a model: set init.from_run=RUN_DIR or "
                              "init.from_hf=FOLDER")
        if not self._resuming:
            self.source.copy_tokenizer(self.dir)
        return load_tokenizer(self.dir.path)

    # ------------------------------------------------------------------ config.json + W&B

    def _write_config(self, model_cfg: ModelConfig, policy_key: str | None = None) -> dict:
        saved = to_dict(self.config)
        saved["model"] = model_fields(model_cfg)
        if policy_key:  # the checkpoint's params nest the language model under this key
            saved[POLICY_PARAMS] = policy_key
        saved["parent"] = self.source.describe()
        if self._saved is not None:
            if self._resuming:
                saved["parent"] = self._saved.get("parent", saved["parent"])
            diffs = config_differences(self._saved, saved)
            if diffs:
                log.warning("%s %s with a changed config:\n  %s", "resuming" if
                            self._resuming else "restarting", self.dir.path, "\n  ".join(diffs))
        if jax.process_index() == 0:
            self.dir.config.write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n")
        return saved

    def _start_tracker(self, saved: dict) -> Tracker:
        w = self.config.wandb
        cfg = TrackerConfig(project=w.project, name=self.config.run.name or self.dir.path.name,
                            group=w.group or None, job_type=self.stage, mode=w.mode,
                            entity=w.entity or None, tags=tuple(w.tags))
        return Tracker(self.dir.path, cfg, saved, is_main_process=jax.process_index() == 0)

    # ------------------------------------------------------------------ state

    lora: LoraTraining | None = None  # set by `init_state` when `config.lora.rank` > 0

    def init_state(self, model_cfg: ModelConfig, optimizer: optax.GradientTransformation, *,
                   data_iter=None) -> tuple[TrainState, TrainState, int]:
        """(state, shardings, start): newest checkpoint, else parent, else random."""
        saved = self._write_config(model_cfg)
        self.tracker = self._start_tracker(saved)
        lora_cfg = lora_config(self.config)
        if lora_cfg.rank:
            return self._init_lora_state(model_cfg, optimizer, lora_cfg, saved, data_iter)
        model = Transformer(model_cfg)
        abstract, shardings = state_shardings(model_init_fn(model), optimizer, self.mesh,
                                              self.rules)
        restored = self._resume(abstract, data_iter, "")
        if restored is not None:
            return restored[0], shardings, restored[1]
        rng = jax.random.PRNGKey(self.config.run.seed)
        if self.source.kind == "random":
            state, _ = init_train_state(model_init_fn(model), optimizer, rng, self.mesh,
                                        self.rules, shardings)
        else:
            params = self.source.load_params(model_cfg, shardings.params)
            state = state_from_params(params, optimizer, rng, shardings)
            log.info("started from %s", self.source.describe())
        replicated = check_params_sharded(state.params)
        if replicated:
            log.warning("large params are replicated on every device under rule set %r: %s",
                        self.config.mesh.rules, ", ".join(replicated[:5]))
        log.info("model: %.2fM params, mesh %s", model_cfg.num_params() / 1e6,
                 dict(self.mesh.shape))
        self.tracker.summary(n_params=model_cfg.num_params())
        return state, shardings, 0

    def init_state_with(self, model_cfg: ModelConfig, init_params: Callable[[jax.Array], dict],
                        optimizer: optax.GradientTransformation,
                        fresh_params: Callable[[Any], dict], *, policy_key: str | None = None
                        ) -> tuple[TrainState, TrainState, int]:
        """`init_state` for a params tree that is not one transformer's (reward model, PPO).

        `policy_key` names the language-model subtree (recorded in config.json)."""
        saved = self._write_config(model_cfg, policy_key)
        self.tracker = self._start_tracker(saved)
        abstract, shardings = state_shardings(init_params, optimizer, self.mesh, self.rules)
        restored = self._resume(abstract, None, "")
        if restored is not None:
            return restored[0], shardings, restored[1]
        params = fresh_params(shardings.params)
        rng = jax.random.PRNGKey(self.config.run.seed)
        state = state_from_params(params, optimizer, rng, shardings)
        n_params = sum(x.size for x in jax.tree.leaves(params))
        log.info("%s from %s: %.2fM params, mesh %s", self.stage,
                 self.source.describe().get("path"), n_params / 1e6, dict(self.mesh.shape))
        self.tracker.summary(n_params=n_params)
        return state, shardings, 0

    def _resume(self, abstract, data_iter, what: str):
        """(state, iteration) from this run's newest checkpoint (the metrics logged after it
        are dropped, so no iteration appears twice), or None for a new run."""
        restored = self.checkpointer.restore(abstract, data_iter)
        if restored is not None:
            self.tracker.truncate_after(restored[1])
            log.info("resumed %sfrom iteration %d", what, restored[1])
        return restored

    def _init_lora_state(self, model_cfg: ModelConfig, optimizer: optax.GradientTransformation,
                         lora_cfg: LoraConfig, saved: dict, data_iter
                         ) -> tuple[TrainState, TrainState, int]:
        """Adapters as the trained params; the base read from the parent `config.json` records."""
        model = Transformer(model_cfg)
        source = base_source(saved, self.dir.path)
        _, base_shardings = state_shardings(model_init_fn(model), optax.identity(), self.mesh,
                                            self.rules)
        base = source.load_params(model_cfg, base_shardings.params)
        self.lora = LoraTraining(lora_cfg, base, base_shardings.params, self.batch_sharding)
        adapter_init = model_adapter_init(model, lora_cfg)
        abstract, shardings = state_shardings(adapter_init, optimizer, self.mesh, self.rules)
        restored = self._resume(abstract, data_iter, "LoRA adapters ")
        if restored is not None:
            return restored[0], shardings, restored[1]
        rng = jax.random.PRNGKey(self.config.run.seed)
        state, _ = init_train_state(adapter_init, optimizer, rng, self.mesh, self.rules,
                                    shardings)
        n_adapter = sum(x.size for x in jax.tree.leaves(state.params))
        log.info("LoRA rank %d on %s of %s: %.3fM trained / %.2fM frozen params",
                 lora_cfg.rank, ",".join(lora_cfg.targets), source.describe()["path"],
                 n_adapter / 1e6, model_cfg.num_params() / 1e6)
        self.tracker.summary(n_params=model_cfg.num_params(), n_trained_params=n_adapter)
        return state, shardings, 0

    def frozen_params(self, model_cfg: ModelConfig, source: ModelSource | None = None):
        """Params of `source` (default: this run's parent) with the training shardings and no
        optimizer state: a frozen reference or reward model."""
        source = source or self.source
        if source.kind == "random":
            raise ConfigError("a frozen model needs init.from_run or init.from_hf")
        model = Transformer(model_cfg)
        optimizer = optax.identity()
        _, shardings = state_shardings(model_init_fn(model), optimizer, self.mesh, self.rules)
        return source.load_params(model_cfg, shardings.params)

    # ------------------------------------------------------------------ steps and loop

    def put_batch(self, batch: dict) -> dict:
        """Host batch (this process' rows) → global arrays sharded over the mesh."""
        return {k: jax.make_array_from_process_local_data(self.batch_sharding, np.asarray(v))
                for k, v in batch.items()}

    def optimizer(self, updates_per_iteration: int = 1):
        """(optax optimizer, lr schedule) from `config.optim` for `train.steps` iterations."""
        return optimizer_from_config(self.config, self.config.train.steps * updates_per_iteration)

    def update_step(self, loss_fn: Callable, optimizer: optax.GradientTransformation,
                    lr_schedule, shardings: TrainState) -> tuple[Callable, Callable]:
        """(jitted step, full_params); under LoRA `full_params` gives the merged weights."""
        jit_step, full_params = self.jit_step, lambda p: p
        if self.lora is not None:
            loss_fn, jit_step, full_params = (self.lora.loss(loss_fn), self.lora.jit_step,
                                              self.lora.merged)
        step = make_train_step(loss_fn, optimizer, grad_accum=self.config.optim.grad_accum,
                               skip_nonfinite=self.config.train.on_nonfinite == "skip",
                               lr_schedule=lr_schedule)
        return jit_step(step, shardings), full_params

    def train_lm(self, model_cfg: ModelConfig, data_iter, heldout_batches, tokenizer, *,
                 started: Callable[[int], None] | None = None,
                 sample: Callable | None = None, **eval_parts) -> dict[str, float]:
        """An LM stage (pretrain, SFT): LM loss on `loss_mask`, evals, sampler, loop."""
        from llm_jax.eval.registry import build_evaluators
        from llm_jax.generate.sampler import Sampler
        from llm_jax.losses.lm import make_lm_loss
        from llm_jax.train.loop import batch_iteration

        model = Transformer(model_cfg)

        def apply(params, tokens, positions, segment_ids):
            return model.apply({"params": params}, tokens, positions, segment_ids)

        optimizer, schedule = self.optimizer()
        state, shardings, start = self.init_state(model_cfg, optimizer, data_iter=data_iter)
        if started is not None:
            started(start)
        step_fn, full_params = self.update_step(make_lm_loss(apply), optimizer, schedule,
                                                shardings)
        sampler = Sampler(model, mesh=self.mesh, rules=self.rules)
        evaluate = build_evaluators(self.config, apply=apply, lm_batches=heldout_batches,
                                    put_batch=self.put_batch, tokenizer=tokenizer,
                                    sampler=sampler, **eval_parts)
        seq_len = self.config.data.seq_len
        tokens = self.config.data.batch_size * seq_len
        loop_cfg = self.loop_config(tokens_per_iteration=tokens,
                                    flops_per_iteration=model_cfg.flops_per_token(seq_len) * tokens)
        return self.train(state, batch_iteration(step_fn, data_iter, self.put_batch), loop_cfg,
                          start=start, data_iter=data_iter,
                          sample=sample(sampler) if sample is not None else None,
                          evaluate=lambda params: evaluate(full_params(params)))

    def jit_step(self, train_step: Callable, shardings: TrainState) -> Callable:
        return jit_train_step(train_step, shardings, self.batch_sharding)

    def train(self, state, iteration_fn: Callable, loop_cfg: LoopConfig, *, start: int,
              data_iter=None, evaluate=None, sample=None, should_stop=None
              ) -> dict[str, float]:
        """The shared loop with this run's checkpointer and tracker; returns the metrics of
        the last evaluation (the stage's final metrics)."""
        final: dict[str, float] = {}

        def evaluate_and_keep(params):
            final.update(evaluate(params))
            return final

        run_training(state, iteration_fn, loop_cfg, start=start, checkpointer=self.checkpointer,
                     data_iter=data_iter, tracker=self.tracker, sample=sample,
                     evaluate=evaluate_and_keep if evaluate is not None else None,
                     should_stop=should_stop)
        return final

    def loop_config(self, *, tokens_per_iteration: int = 0, flops_per_iteration: float = 0.0
                    ) -> LoopConfig:
        """`LoopConfig` from `config.train` (iterations = `train.steps`)."""
        from llm_jax.train.flops import peak_flops_per_device

        t = self.config.train
        peak = t.peak_flops or peak_flops_per_device(jax.devices()[0].device_kind)
        return LoopConfig(total_iterations=t.steps, log_every=t.log_every,
                          eval_every=t.eval_every, sample_every=t.sample_every,
                          eval_at_start=t.eval_at_start, time_budget_s=t.time_budget_s,
                          on_nonfinite=t.on_nonfinite, tokens_per_iteration=tokens_per_iteration,
                          flops_per_iteration=flops_per_iteration,
                          peak_flops=peak * jax.device_count())

    def close(self) -> None:
        try:
            self.checkpointer.close()
        finally:
            if self.tracker is not None:
                self.tracker.finish()


def hold_run_dir(run_dir: RunDir) -> RunLock:
    """Take `run.lock` on process 0 and share the outcome, so a refusal stops every process."""
    lock = RunLock(run_dir.lock)
    if jax.process_count() == 1:
        return lock.acquire(job=f"{os.getpid()}")
    from jax.experimental import multihost_utils

    token = int.from_bytes(os.urandom(4), "little") & 0x7FFFFFFF
    refusal = None
    if jax.process_index() == 0:
        try:
            lock.acquire(job=str(token))
        except Exception as e:  # noqa: BLE001 - re-raised below, after the others are told
            refusal = e
    status = np.array([refusal is None, token], np.int32)
    ok, token = (int(x) for x in multihost_utils.broadcast_one_to_all(status))
    if refusal is not None:
        raise refusal
    if not ok:
        holder = lock.holder()
        raise RunInUseError(f"{run_dir.path} is in use by another job"
                            + (f" (pid {holder.get('pid')} on host {holder.get('host')} since "
                               f"{holder.get('since')})" if holder else "")
                            + "; process 0 of this job could not lock it")
    if jax.process_index() != 0:
        lock.join(job=str(token))
    return lock


class start_run:  # noqa: N801 - used as a context manager, reads like a function
    """`with start_run(config, run_dir, stage) as run:` joins the multi-host job, creates the
    run directory, enters the mesh and closes checkpoints and tracker on the way out."""

    def __init__(self, config: ml_collections.ConfigDict, run_dir: str | Path, stage: str):
        self.args = (config, run_dir, stage)

    def __enter__(self) -> Run:
        config, run_dir, stage = self.args
        maybe_initialize_distributed()
        use_compilation_cache(config.run.compilation_cache)
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        # Before anything is written there (config, tokenizer, checkpoints, metrics): a second
        # job on the same directory must leave the first one's files untouched.
        self._lock = hold_run_dir(RunDir(run_dir))
        try:
            self.run = Run(config, run_dir, stage)
            self._mesh = mesh_context(self.run.mesh, self.run.rules)
            self._mesh.__enter__()
        except BaseException:
            self._lock.release()
            raise
        return self.run

    def __exit__(self, *exc) -> None:
        try:
            self.run.close()
        finally:
            try:
                self._mesh.__exit__(*exc)
            finally:
                self._lock.release()  # last: only once every write has finished
