"""A trained reward-model run: loading it, and scoring completions with it as an RL reward.

    rm, params, tokenizer, template = load_reward_model("runs/rm_tiny/default")
    reward_fn = RewardModelReward("runs/rm_tiny/default", mesh=run.mesh, rules=run.rules)
    rewards = reward_fn(prompts, completions, metas)     # np.ndarray [B] float32

Replies are rendered with the RM's own template as its training pairs were; shapes are
bucketed like the sampler's."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import linen as nn

from llm_jax.checkpoints.restore import abstract_tree, restore_params
from llm_jax.checkpoints.sources import chat_template_for, load_tokenizer
from llm_jax.errors import ConfigError, RunError
from llm_jax.generate.sampler import bucket_size
from llm_jax.models.config import ModelConfig
from llm_jax.models.headed import RewardModel
from llm_jax.runs import RunDir
from llm_jax.sharding.mesh import batch_sharding, logical_shardings, mesh_context, replicated
from llm_jax.sharding.rules import rules as rule_set

STAGE = "reward_model"  # config.stage of a reward-model run


def reward_model_shardings(rm: RewardModel, mesh, rules) -> dict:
    """NamedShardings of the `{"transformer", "head"}` params under `rules`."""
    with nn.logical_axis_rules(rules):
        return logical_shardings(jax.eval_shape(rm.init_params, jax.random.PRNGKey(0)), mesh, rules)


def load_reward_model(run_dir: str | Path, *, step: int | None = None, mesh=None, rules=None
                      ) -> tuple[RewardModel, dict, Any, Any]:
    """(reward model, params, tokenizer, template) of a reward-model run's newest checkpoint."""
    run = RunDir(run_dir)
    saved = run.read_config()
    if saved.get("stage") != STAGE:
        raise RunError(f"{run_dir}: not a reward-model run (its stage is "
                       f"{saved.get('stage')!r})")
    if not run.checkpoint_steps():
        raise RunError(f"{run_dir}: the reward model has no checkpoint yet")
    rm = RewardModel(ModelConfig(**saved["model"]))
    shardings = None
    if mesh is not None:
        rules = rules if rules is not None else rule_set(saved["mesh"]["rules"])
        shardings = reward_model_shardings(rm, mesh, rules)
    target = abstract_tree(rm.init_params, shardings)
    params, _ = restore_params(run.checkpoints, target, step)
    return rm, params, load_tokenizer(run_dir), chat_template_for(run_dir)


def fit_to(ids: list[int], max_len: int, bos_id: int | None) -> list[int]:
    """`ids` cut from the front to `max_len` tokens (keeping a leading `<|bos|>`): the end,
    where the head reads, always stays."""
    if len(ids) <= max_len:
        return ids
    if bos_id is not None and ids[0] == bos_id:
        return [ids[0], *ids[len(ids) - max_len + 1:]]
    return ids[len(ids) - max_len:]


class RewardModelReward:
    """A reward-model run as a `RewardFn(prompts, completions, meta) -> float32 [B]`."""

    def __init__(self, run_dir: str | Path, mesh=None, rules=None, *, step: int | None = None,
                 batch_size: int = 64, max_len: int | None = None):
        if batch_size < 1:
            raise ConfigError(f"reward model batch_size={batch_size} must be >= 1")
        self.model, self.params, self.tokenizer, self.template = load_reward_model(
            run_dir, step=step, mesh=mesh, rules=rules)
        if mesh is not None and rules is None:
            rules = rule_set(RunDir(run_dir).read_config()["mesh"]["rules"])
        self.mesh, self.rules, self.batch_size = mesh, rules, batch_size
        self.max_len = min(max_len or self.model.cfg.max_seq_len, self.model.cfg.max_seq_len)
        self.bos_id = getattr(self.tokenizer, "bos_id", None)
        # Replicated rewards: every host reads all of them, whatever the mesh.
        self._score = jax.jit(lambda p, tokens, seg: self.model.apply({"params": p}, tokens, seg),
                              out_shardings=None if mesh is None else replicated(mesh))

    def render(self, prompt: str | Sequence[Mapping], completion: str) -> list[int]:
        """The ids the head reads: prompt + completion as the RM's training pairs were."""
        messages = ([{"role": "user", "content": prompt}] if isinstance(prompt, str)
                    else list(prompt))
        ids, _ = self.template.render_for_training(
            [*messages, {"role": "assistant", "content": completion}], self.tokenizer)
        return fit_to(list(ids), self.max_len, self.bos_id)

    def __call__(self, prompts: Sequence[str | Sequence[Mapping]], completions: Sequence[str],
                 meta: Sequence[Mapping[str, Any]]) -> np.ndarray:
        if not len(prompts) == len(completions) == len(meta):
            raise ValueError(f"rewards need one prompt and one meta per completion, got "
                             f"{len(prompts)} prompts, {len(completions)} completions, "
                             f"{len(meta)} metas")
        rows = [self.render(p, c) for p, c in zip(prompts, completions)]
        out = np.zeros(len(rows), np.float32)
        for start in range(0, len(rows), self.batch_size):
            chunk = rows[start:start + self.batch_size]
            out[start:start + len(chunk)] = self._score_rows(chunk)
        return out

    def _score_rows(self, rows: list[list[int]]) -> np.ndarray:
        length = min(self.max_len, bucket_size(max(len(r) for r in rows), 64))
        n = bucket_size(len(rows), 8)
        if self.mesh is not None:  # whole rows per data-parallel device
            devices = self.mesh.devices.size
            n = -(-n // devices) * devices
        tokens = np.full((n, length), self.tokenizer.pad_id, np.int32)
        segments = np.zeros((n, length), np.int32)
        for i, ids in enumerate(rows):
            tokens[i, :len(ids)], segments[i, :len(ids)] = ids, 1
        if self.mesh is None:
            return np.asarray(self._score(self.params, tokens, segments))[:len(rows)]
        sharding = batch_sharding(self.mesh)
        # Every host holds the same rows; each hands over the slices its devices own.
        place = lambda x: jax.make_array_from_callback(  # noqa: E731
            x.shape, sharding, lambda index: x[index])
        with mesh_context(self.mesh, self.rules):
            rewards = self._score(self.params, place(tokens), place(segments))
        return np.asarray(rewards)[:len(rows)]


def make_reward_model_reward(run_dir: str | Path, run) -> RewardModelReward:
    """`rl.reward = "reward_model"`: the run at `run_dir` scoring on the RL run's mesh.

    ConfigError without a run directory, RunError when it is not a reward-model run."""
    if not run_dir:
        raise ConfigError("rl.reward=reward_model needs rl.reward_model=RUN_DIR (a "
                          "reward_model run)")
    return RewardModelReward(run_dir, mesh=run.mesh, rules=run.rules)
