"""The models one post-training stage holds: the policy it trains, a frozen reference for the
KL penalty, a reward model. Each role is a model with its params on the run's mesh.

    reference = reference_role(run, model_cfg, kl_coef=config.rl.kl_coef)   # None when β = 0

The reference is the policy's starting point (the run's parent), restored into the same
shardings as the policy's params and never updated. With a KL weight of 0 nothing is loaded,
so a β = 0 run costs no memory for it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from flax import linen as nn

from llm_jax.checkpoints.sources import ModelSource
from llm_jax.models.config import ModelConfig
from llm_jax.models.transformer import Transformer


@dataclasses.dataclass(frozen=True)
class Role:
    """One model of a stage: what it is and the params it runs with."""

    name: str
    model: nn.Module
    params: Any


def reference_role(run, model_cfg: ModelConfig, kl_coef: float,
                   source: ModelSource | None = None) -> Role | None:
    """The frozen reference (default: the run's parent), or None when `kl_coef` is 0."""
    if kl_coef == 0:
        return None
    return Role("reference", Transformer(model_cfg), run.frozen_params(model_cfg, source))
