"""Transformers with a scalar head instead of the LM head: the reward model and PPO's critic.

    rewards = RewardModel(cfg).apply({"params": params}, tokens, segment_ids)      # [B]
    values = Critic(cfg).apply({"params": p}, tokens, present, prompt_len)  # [B, T]

Both start from their parent's params minus `lm_head` (`backbone_params`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import linen as nn

from llm_jax.models.config import ModelConfig
from llm_jax.models.heads import RewardHead, ValueHead
from llm_jax.models.transformer import Transformer, positions_from_mask


class HeadedTransformer(nn.Module):
    """The backbone and the head a subclass names (`head_type`), with the example inputs the
    head is first called with (`head_example`)."""

    cfg: ModelConfig
    head_type: ClassVar[type[nn.Module]]

    def make_head(self, **module_kwargs) -> nn.Module:
        return self.head_type(self.cfg.d_model, dtype=self.cfg.compute_dtype,
                              param_dtype=self.cfg.params_dtype, **module_kwargs)

    def head_example(self, features: jnp.ndarray) -> tuple:
        return (features,)

    def setup(self):
        self.transformer = Transformer(self.cfg)
        self.head = self.make_head()

    def features(self, tokens: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
        """The backbone's final features [B, T, D], one sequence per row (`mask` 1 on real
        tokens)."""
        mask = mask.astype(jnp.int32)
        return self.transformer(tokens, positions_from_mask(mask), mask, features_only=True)

    def init_params(self, rng: jax.Array) -> dict:
        """Logically boxed `{"transformer", "head"}` params."""
        tokens = jnp.zeros((1, 1), jnp.int32)
        return self.init(rng, tokens, jnp.ones_like(tokens), method=self._init_all)["params"]

    def _init_all(self, tokens, mask):
        return self.head(*self.head_example(self.features(tokens, mask)))

    def init_head(self, rng: jax.Array) -> dict:
        """Logically boxed params of a fresh head (the backbone comes from a parent model)."""
        features = jnp.zeros((1, 1, self.cfg.d_model), self.cfg.compute_dtype)
        # parent=None: a module of its own, not a child of this (unbound) one
        head = self.make_head(parent=None)
        return head.init(rng, *self.head_example(features))["params"]


class RewardModel(HeadedTransformer):
    """A `RewardHead` on the backbone: one reward per sequence, read at its last real token."""

    head_type = RewardHead

    def head_example(self, features: jnp.ndarray) -> tuple:
        return features, jnp.ones(features.shape[:2], jnp.int32)

    def __call__(self, tokens: jnp.ndarray, segment_ids: jnp.ndarray) -> jnp.ndarray:
        """Rewards [B] of one sequence per row (`segment_ids` 1 on real tokens, 0 on
        padding)."""
        return self.head(self.features(tokens, segment_ids), segment_ids.astype(jnp.int32))


class Critic(HeadedTransformer):
    """A `ValueHead` on the backbone: one value per token."""

    head_type = ValueHead

    def __call__(self, tokens: jnp.ndarray, present: jnp.ndarray, prompt_len: int
                 ) -> jnp.ndarray:
        """Values [B, T] of the completion slots; V_t is read at the position before token t (the
        state it was sampled in)."""
        return self.head(self.features(tokens, present))[:, prompt_len - 1:-1]


def backbone_params(lm_params: Mapping) -> dict:
    """A language model's params as a headed model's backbone: all but the LM head."""
    return {k: v for k, v in lm_params.items() if k != "lm_head"}
