"""Optimizer and learning-rate schedule from plain arguments (optax does the work)."""

from __future__ import annotations

import dataclasses

import jax
import optax


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    lr: float = 3e-4
    schedule: str = "cosine"  # cosine | wsd (warmup-stable-decay) | constant
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1  # final lr = lr * min_lr_ratio
    decay_fraction: float = 0.2  # wsd: the last fraction of training decays linearly
    weight_decay: float = 0.1
    b1: float = 0.9
    b2: float = 0.95
    eps: float = 1e-8
    clip_norm: float = 1.0  # 0 disables global-norm clipping


def make_schedule(cfg: OptimConfig, total_steps: int) -> optax.Schedule:
    warmup = min(cfg.warmup_steps, max(total_steps - 1, 0))
    end_lr = cfg.lr * cfg.min_lr_ratio
    if cfg.schedule == "cosine":
        return optax.warmup_cosine_decay_schedule(
            0.0, cfg.lr, warmup_steps=warmup, decay_steps=max(total_steps, warmup + 1),
            end_value=end_lr)
    if cfg.schedule == "wsd":
        decay = max(int(total_steps * cfg.decay_fraction), 1)
        stable = max(total_steps - warmup - decay, 0)
        return optax.join_schedules(
            [optax.linear_schedule(0.0, cfg.lr, max(warmup, 1)),
             optax.constant_schedule(cfg.lr),
             optax.linear_schedule(cfg.lr, end_lr, decay)],
            boundaries=[warmup, warmup + stable])
    if cfg.schedule == "constant":
        return optax.join_schedules(
            [optax.linear_schedule(0.0, cfg.lr, max(warmup, 1)), optax.constant_schedule(cfg.lr)],
            boundaries=[warmup])
    raise ValueError(f"optim.schedule={cfg.schedule!r}; expected cosine, wsd or constant")


def _decay_mask(params):
    # Decay matrices only: biases and norm scales are left alone, as in GPT-2 and Llama.
    return jax.tree.map(lambda p: p.ndim >= 2, params)


def make_optimizer(cfg: OptimConfig, total_steps: int
                   ) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """AdamW with warmup + decay, after global-norm clipping. Returns (optimizer, schedule)."""
    schedule = make_schedule(cfg, total_steps)
    parts = [optax.clip_by_global_norm(cfg.clip_norm)] if cfg.clip_norm > 0 else []
    parts.append(optax.adamw(schedule, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps,
                             weight_decay=cfg.weight_decay, mask=_decay_mask))
    return optax.chain(*parts), schedule
