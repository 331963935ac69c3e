"""The one decode loop: batched, ragged prompts → sampled continuations with log-probs.

    rollout = generate(model, params, prompts, rng, SamplingConfig(max_new_tokens=64, n=4))

Prompts are left-padded to a bucketed length and prefilled once into a preallocated KV cache;
the cache is repeated for the `n` samples of each prompt (the GRPO group) and a jitted
`lax.while_loop` decodes one token per step until every row has stopped. Prefill and decode are
one compiled function per (model, sampling config, bucketed shape), so chat and RL calls with
new prompts of similar size never recompile.

`Rollout.logprobs` are log-probabilities under the model's *unmodified* distribution
(temperature 1, no top-k/top-p): the quantity the RL losses need, equal to `token_logprobs`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from flax import struct
from jax.experimental import io_callback, multihost_utils
from jax.sharding import NamedSharding, PartitionSpec

from llm_jax.generate.filtering import sample_tokens
from llm_jax.generate.logprobs import positions_from_mask
from llm_jax.losses.lm import token_logprobs_from_logits
from llm_jax.nn.attention import KVCache
from llm_jax.sharding.rules import BATCH_AXES

FINISH_STOP, FINISH_LENGTH = 0, 1


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
    max_new_tokens: int = 64
    temperature: float = 1.0  # 0 = greedy
    top_k: int = 0  # 0 = off
    top_p: float = 1.0  # 1 = off
    n: int = 1  # samples per prompt, sharing one prefill
    stop_tokens: tuple[int, ...] = ()
    pad_id: int = 0
    prompt_bucket: int = 64  # prompt length is padded up to a multiple of this
    batch_bucket: int = 8  # number of prompts is padded up to a multiple of this


@struct.dataclass
class Rollout:
    prompt_tokens: np.ndarray  # [rows, P] left-padded, rows = prompts × n
    prompt_mask: np.ndarray  # [rows, P]
    tokens: np.ndarray  # [rows, max_new_tokens], pad_id after a stop
    logprobs: np.ndarray  # [rows, max_new_tokens], 0 where mask is 0
    mask: np.ndarray  # [rows, max_new_tokens], 1 on generated tokens (stop token included)
    lengths: np.ndarray  # [rows]
    finish_reason: np.ndarray  # [rows]: FINISH_STOP or FINISH_LENGTH
    prompt_index: np.ndarray  # [rows]: which prompt each row continues


def _round_up(x: int, multiple: int) -> int:
    return max(multiple, -(-x // multiple) * multiple)


def left_pad(prompts: Sequence[Sequence[int]], length: int, rows: int, pad_id: int
             ) -> tuple[np.ndarray, np.ndarray]:
    tokens = np.full((rows, length), pad_id, np.int32)
    mask = np.zeros((rows, length), np.int32)
    for i, p in enumerate(prompts):
        if len(p):
            tokens[i, -len(p):] = p
            mask[i, -len(p):] = 1
    return tokens, mask


def _decode_fn(model, cfg: SamplingConfig, batch_spec, on_token=None):
    """The pure prefill + decode computation for fixed shapes.

    `on_token(step, tokens)`, when given, is called from inside the loop with each step's ids
    (an ordered host callback): that is how chat streams text.
    """
    stop = jnp.asarray(cfg.stop_tokens or (-1,), jnp.int32)
    steps = cfg.max_new_tokens

    def constrain(x):
        return x if batch_spec is None else jax.lax.with_sharding_constraint(x, batch_spec)

    def run(params, tokens, mask, rng):
        batch, prompt_len = tokens.shape
        cache = KVCache.init(model.cfg, batch, prompt_len + steps)
        cache = jax.tree.map(lambda x: constrain(x) if x.ndim else x, cache)
        positions = positions_from_mask(mask)
        logits, cache = model.apply({"params": params}, tokens, positions, mask, cache=cache)
        last = logits[:, -1]
        next_pos = positions[:, -1] + 1

        def repeat(x):  # the group's samples share the prompt's prefill
            return constrain(jnp.repeat(x, cfg.n, axis=0)) if cfg.n > 1 else x

        cache = jax.tree.map(lambda x: x if x.ndim == 0 else repeat(x), cache)
        last, next_pos = repeat(last), repeat(next_pos)
        rows = batch * cfg.n
        state = dict(
            i=jnp.zeros((), jnp.int32), cache=cache, logits=last, pos=next_pos,
            tokens=jnp.full((rows, steps), cfg.pad_id, jnp.int32),
            logprobs=jnp.zeros((rows, steps), jnp.float32),
            done=jnp.zeros((rows,), bool), rng=rng)

        def cond(s):
            return (s["i"] < steps) & ~jnp.all(s["done"])

        def body(s):
            rng, key = jax.random.split(s["rng"])
            token = sample_tokens(s["logits"], key, cfg.temperature, cfg.top_k, cfg.top_p)
            logp = token_logprobs_from_logits(s["logits"], token)
            live = ~s["done"]
            token = jnp.where(live, token, cfg.pad_id)
            tokens = s["tokens"].at[:, s["i"]].set(token)
            logprobs = s["logprobs"].at[:, s["i"]].set(jnp.where(live, logp, 0.0))
            done = s["done"] | jnp.isin(token, stop)
            if on_token is not None:
                io_callback(on_token, None, s["i"], token, ordered=True)
            logits, cache = model.apply({"params": params}, token[:, None], s["pos"][:, None],
                                        live[:, None].astype(jnp.int32), cache=s["cache"])
            return dict(i=s["i"] + 1, cache=cache, logits=logits[:, 0], pos=s["pos"] + 1,
                        tokens=tokens, logprobs=logprobs, done=done, rng=rng)

        out = jax.lax.while_loop(cond, body, state)
        return out["tokens"], out["logprobs"]

    return run


_COMPILED: dict = {}


def _compiled(model, cfg: SamplingConfig, mesh, rules, on_token=None):
    key = (model.cfg, cfg, id(mesh) if mesh is not None else None,
           tuple(rules) if rules is not None else None, on_token)
    if key not in _COMPILED:
        spec = None if mesh is None else NamedSharding(mesh, PartitionSpec(BATCH_AXES))
        _COMPILED[key] = jax.jit(_decode_fn(model, cfg, spec, on_token))
    return _COMPILED[key]


def _finish(tokens: np.ndarray, cfg: SamplingConfig):
    """mask, lengths and finish reasons from the generated ids."""
    rows, steps = tokens.shape
    is_stop = np.isin(tokens, cfg.stop_tokens) if cfg.stop_tokens else np.zeros_like(tokens, bool)
    stopped = is_stop.any(axis=1)
    first_stop = np.where(stopped, is_stop.argmax(axis=1), steps - 1)
    lengths = np.where(stopped, first_stop + 1, steps).astype(np.int32)
    mask = (np.arange(steps)[None, :] < lengths[:, None]).astype(np.int32)
    reason = np.where(stopped, FINISH_STOP, FINISH_LENGTH).astype(np.int32)
    return mask, lengths, reason


def _to_host(x: jax.Array) -> np.ndarray:
    """The whole array on this host, gathering rows held by other processes in multi-host runs."""
    if x.is_fully_addressable:
        return np.asarray(jax.device_get(x))
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def generate(model, params, prompts: Sequence[Sequence[int]], rng: jax.Array,
             cfg: SamplingConfig, *, mesh=None, rules=None, on_token=None) -> Rollout:
    """Sample `cfg.n` continuations of each prompt (lists of token ids).

    `on_token(step, ids)` streams each step's ids to the host as they are produced.
    """
    if not prompts:
        raise ValueError("generate() needs at least one prompt")
    longest = max(len(p) for p in prompts)
    if longest == 0:
        raise ValueError("every prompt needs at least one token (e.g. <|bos|>)")
    limit = model.cfg.max_seq_len
    if longest + cfg.max_new_tokens > limit:
        raise ValueError(f"prompt of {longest} tokens + max_new_tokens={cfg.max_new_tokens} "
                         f"exceeds the model's max_seq_len={limit}")
    rows_multiple = cfg.batch_bucket
    if mesh is not None:  # the batch must split evenly over the data-parallel devices
        data_devices = int(np.prod([mesh.shape[a] for a in BATCH_AXES]))
        rows_multiple = int(np.lcm(rows_multiple, data_devices))
    prompt_len = min(_round_up(longest, cfg.prompt_bucket), limit - cfg.max_new_tokens)
    batch = _round_up(len(prompts), rows_multiple)
    tokens, mask = left_pad(prompts, prompt_len, batch, cfg.pad_id)
    fn = _compiled(model, cfg, mesh, rules, on_token)
    if mesh is not None:
        with jax.set_mesh(mesh), nn.logical_axis_rules(rules or ()):
            sharding = NamedSharding(mesh, PartitionSpec(BATCH_AXES))
            out_tokens, logprobs = fn(params, jax.device_put(tokens, sharding),
                                      jax.device_put(mask, sharding), rng)
    else:
        out_tokens, logprobs = fn(params, tokens, mask, rng)
    rows = len(prompts) * cfg.n
    out_tokens = _to_host(out_tokens)[:rows]
    gen_mask, lengths, reason = _finish(out_tokens, cfg)
    out_tokens = np.where(gen_mask == 1, out_tokens, cfg.pad_id).astype(np.int32)
    logprobs = _to_host(logprobs)[:rows] * gen_mask
    return Rollout(
        prompt_tokens=np.repeat(tokens[:len(prompts)], cfg.n, axis=0),
        prompt_mask=np.repeat(mask[:len(prompts)], cfg.n, axis=0),
        tokens=out_tokens, logprobs=logprobs, mask=gen_mask, lengths=lengths,
        finish_reason=reason,
        prompt_index=np.repeat(np.arange(len(prompts), dtype=np.int32), cfg.n))
