"""Optimizer presets (fields of `llm_jax.train.optim.OptimConfig` plus grad accumulation)."""

import ml_collections


def adamw(lr: float = 3e-4, warmup_steps: int = 100, schedule: str = "cosine",
          **overrides) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(
        lr=lr, schedule=schedule, warmup_steps=warmup_steps, min_lr_ratio=0.1,
        decay_fraction=0.2, weight_decay=0.1, b1=0.9, b2=0.95, eps=1e-8, clip_norm=1.0,
        grad_accum=1,  # micro-batches per optimizer step (batch_size must divide by it)
    ) | overrides)


def constant_lr(lr: float, warmup_steps: int = 0, **overrides) -> ml_collections.ConfigDict:
    """RL's optimizer: a flat learning rate (after an optional warmup), no weight decay, so
    the policy is pulled only by its rewards."""
    return adamw(lr=lr, warmup_steps=warmup_steps, schedule="constant", weight_decay=0.0,
                 **overrides)
