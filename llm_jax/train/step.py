"""The one train-step factory every stage uses.

    train_step = make_train_step(loss_fn, optimizer)   # pure: (state, batch) -> (state, metrics)
    step = jit_train_step(train_step, state_shardings, batch_sharding)

A stage supplies only `loss_fn(params, batch, rng) -> (loss, aux)`; `aux["weight"]` (e.g. loss
tokens) makes gradient accumulation exact. Frozen inputs (a LoRA base) follow the batch as
undonated jit arguments, so only `params` meet the optimizer."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from llm_jax.train.state import TrainState

LossFn = Callable[..., tuple[jnp.ndarray, dict]]


def _weighted_grads(loss_fn: LossFn, params, batch, rng):
    """Gradient of loss·weight, so micro-batch gradients can be summed and divided once."""

    def weighted(p):
        loss, aux = loss_fn(p, batch, rng)
        weight = jax.lax.stop_gradient(jnp.asarray(aux.get("weight", 1.0), jnp.float32))
        return loss * weight, (loss, weight, aux)

    (_, (loss, weight, aux)), grads = jax.value_and_grad(weighted, has_aux=True)(params)
    metrics = {k: jnp.asarray(v, jnp.float32) * weight for k, v in aux.items() if k != "weight"}
    metrics["loss"] = loss * weight
    return grads, weight, metrics


def _split_micro_batches(batch, n: int):
    def split(x):
        if x.shape[0] % n:
            raise ValueError(f"batch size {x.shape[0]} is not divisible by grad_accum={n}")
        return x.reshape((n, x.shape[0] // n) + x.shape[1:])

    return jax.tree.map(split, batch)


def accumulate_grads(loss_fn: LossFn, params, batch, rng, grad_accum: int = 1):
    """(grads, metrics): weighted means over `grad_accum` micro-batches, scanned in sequence."""
    if grad_accum == 1:
        grads, weight, sums = _weighted_grads(loss_fn, params, batch, rng)
    else:
        micro = _split_micro_batches(batch, grad_accum)
        rngs = jax.random.split(rng, grad_accum)
        zero = jax.eval_shape(lambda p, mb, r: _weighted_grads(loss_fn, p, mb, r), params,
                              jax.tree.map(lambda x: x[0], micro), rngs[0])
        zero = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), zero)

        def body(carry, xs):
            mb, r = xs
            out = _weighted_grads(loss_fn, params, mb, r)
            return jax.tree.map(jnp.add, carry, out), None

        (grads, weight, sums), _ = jax.lax.scan(body, zero, (micro, rngs))
    denom = jnp.maximum(weight, 1e-9)
    grads = jax.tree.map(lambda g: g / denom, grads)
    metrics = {k: v / denom for k, v in sums.items()}
    metrics["weight"] = weight
    return grads, metrics


def make_train_step(loss_fn: LossFn, optimizer: optax.GradientTransformation, *,
                    grad_accum: int = 1, skip_nonfinite: bool = False,
                    lr_schedule: optax.Schedule | None = None) -> Callable:
    """A pure `(state, batch) -> (state, metrics)` step.

    With `skip_nonfinite`, a NaN/inf step leaves params and optimizer untouched and reports
    `metrics["finite"]` = 0."""

    def train_step(state: TrainState, batch, *frozen):
        rng, step_rng = jax.random.split(state.rng)
        loss = (lambda p, b, r: loss_fn(p, b, r, *frozen)) if frozen else loss_fn  # noqa: E731
        grads, metrics = accumulate_grads(loss, state.params, batch, step_rng, grad_accum)
        grad_norm = optax.tree.norm(grads)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        finite = jnp.isfinite(metrics["loss"]) & jnp.isfinite(grad_norm)
        if skip_nonfinite:
            keep = lambda new, old: jax.tree.map(  # noqa: E731
                lambda n, o: jnp.where(finite, n, o), new, old)
            params = keep(params, state.params)
            opt_state = keep(opt_state, state.opt_state)
        metrics.update(grad_norm=grad_norm, finite=finite.astype(jnp.float32),
                       param_norm=optax.tree.norm(params))
        if lr_schedule is not None:
            metrics["lr"] = lr_schedule(state.step)
        new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                                  rng=rng)
        return new_state, metrics

    return train_step


def jit_train_step(train_step: Callable, state_shardings, batch_sharding, *,
                   frozen: tuple = (), frozen_shardings: tuple = ()) -> Callable:
    """Compile the step: state is sharded in place (donated), metrics replicated."""
    step = jax.jit(train_step, in_shardings=(state_shardings, batch_sharding, *frozen_shardings),
                   out_shardings=(state_shardings, None), donate_argnums=0)
    if not frozen:
        return step
    return lambda state, batch: step(state, batch, *frozen)
