"""PPO for RLHF (Ouyang et al. 2022; TRL's `PPOTrainer`): per-token rewards and GAE targets.

    rewards = token_rewards(scores, logp, ref_logp, mask, kl_coef)               # [B, T]
    advantages, returns = ppo_targets(rewards, values, mask, gamma, lam, whiten=True)

The score lands on the last sampled token; every sampled token pays −β·(log π − log π_ref)
(k1, as TRL)."""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
from flax import linen as nn

from llm_jax.models.config import ModelConfig
from llm_jax.models.headed import Critic, backbone_params
from llm_jax.models.heads import last_real_index
from llm_jax.models.transformer import Transformer
from llm_jax.rl.gae import gae
from llm_jax.train.setup import model_init_fn

POLICY, CRITIC = "policy", "critic"  # the two subtrees of a PPO run's params


def token_rewards(scores: jnp.ndarray, logp: jnp.ndarray, ref_logp: jnp.ndarray | None,
                  mask: jnp.ndarray, kl_coef: float) -> jnp.ndarray:
    """Per-token rewards [B, T]: −β·(logp − ref_logp), plus the score on the last sampled token."""
    mask = mask.astype(jnp.float32)
    rewards = jnp.zeros_like(mask)
    if kl_coef and ref_logp is not None:
        rewards = -kl_coef * (logp - ref_logp) * mask
    last = last_real_index(mask)
    has_tokens = mask.sum(axis=1) > 0
    return rewards.at[jnp.arange(mask.shape[0]), last].add(
        jnp.where(has_tokens, scores.astype(jnp.float32), 0.0))


def whiten(values: jnp.ndarray, mask: jnp.ndarray, eps: float = 1e-8) -> jnp.ndarray:
    """(x − mean) / std over the tokens where `mask` is 1 (unbiased variance, as TRL's
    `masked_whiten`); 0 elsewhere."""
    mask = mask.astype(jnp.float32)
    n = mask.sum()
    mean = (values * mask).sum() / jnp.maximum(n, 1.0)
    var = (((values - mean) * mask) ** 2).sum() / jnp.maximum(n - 1.0, 1.0)
    return (values - mean) * jax.lax.rsqrt(var + eps) * mask


def ppo_targets(rewards: jnp.ndarray, values: jnp.ndarray, mask: jnp.ndarray, *,
                gamma: float, lam: float, whiten_advantages: bool = True
                ) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(advantages, returns) [B, T] by GAE; advantages whitened over the batch if asked (the
    returns, the critic's targets, never are)."""
    advantages, returns = gae(rewards, values, mask, gamma=gamma, lam=lam)
    if whiten_advantages:
        advantages = whiten(advantages, mask)
    return advantages, returns


def ppo_batch_targets(critic: Critic, critic_params: Mapping, batch: Mapping, prompt_len: int,
                      *, kl_coef: float, gamma: float, lam: float, whiten_advantages: bool
                      ) -> dict[str, jnp.ndarray]:
    """A rollout batch's PPO targets [B, T]: `old_values`, `rewards`, `advantages`, `returns`."""
    values = critic.apply({"params": critic_params}, batch["tokens"], batch["present"],
                          prompt_len)
    mask = batch["loss_mask"]
    rewards = token_rewards(batch["scores"], batch["old_logprobs"], batch.get("ref_logprobs"),
                            mask, kl_coef)
    advantages, returns = ppo_targets(rewards, values, mask, gamma=gamma, lam=lam,
                                      whiten_advantages=whiten_advantages)
    return {"old_values": jnp.where(mask > 0, values, 0.0), "rewards": rewards,
            "advantages": advantages, "returns": returns}


def init_actor_critic(run, model_cfg: ModelConfig, critic: Critic, optimizer):
    """(state, shardings, start): newest checkpoint, else parent as policy + fresh-head critic."""
    policy_init = model_init_fn(Transformer(model_cfg))

    def init_params(rng):
        policy_rng, critic_rng = jax.random.split(rng)
        return {POLICY: policy_init(policy_rng), CRITIC: critic.init_params(critic_rng)}

    def fresh(shardings):
        policy = run.source.load_params(model_cfg, shardings[POLICY])
        # Copied on the devices, not shared: the two trees are updated apart, and a train step
        # that donates its state cannot be given one buffer twice.
        backbone = jax.jit(lambda p: jax.tree.map(jnp.copy, backbone_params(p)))(policy)
        head_rng = jax.random.fold_in(jax.random.PRNGKey(run.config.run.seed), 2)
        head = jax.jit(lambda r: nn.meta.unbox(critic.init_head(r)),
                       out_shardings=shardings[CRITIC]["head"])(head_rng)
        return {POLICY: policy, CRITIC: {"transformer": backbone, "head": head}}

    return run.init_state_with(model_cfg, init_params, optimizer, fresh, policy_key=POLICY)
