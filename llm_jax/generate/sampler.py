"""The one decode loop: batched, ragged prompts → sampled continuations with log-probs.

    sampler = Sampler(model, mesh=mesh, rules=rules)
    rollout = sampler.generate(params, prompts, rng, SamplingConfig(max_new_tokens=64, n=4))

* `Rollout.logprobs` are under the unmodified distribution (temperature 1, no top-k/top-p), or
  at `logprob_temperature` (RL's tempered policy, as TRL takes them).
* Prompt length and row count are bucketed, so similar calls reuse one compiled function.
* Random numbers depend only on (rng, row, step), row = prompt_index * n + sample.
* Long generations decode in up to 8 segments over a growing cache (attention over the cache
  dominates a CPU decode step)."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import math
import threading
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from flax import struct
from jax.experimental import io_callback, multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from llm_jax.generate.filtering import sample_tokens
from llm_jax.generate.logprobs import positions_from_mask
from llm_jax.losses.lm import token_logprobs_from_logits
from llm_jax.models.kv_cache import KVCache
from llm_jax.sharding.rules import rules as named_rules

FINISH_STOP, FINISH_LENGTH = 0, 1
_SEGMENT_STEPS = 64  # below this many steps per segment the extra compiled loop is not worth it
_MAX_SEGMENTS = 8
_MAX_COMPILED = 32  # compiled decode functions kept (LRU)


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
    max_new_tokens: int = 64
    temperature: float = 1.0  # 0 = greedy
    top_k: int = 0  # 0 = off
    top_p: float = 1.0  # 1 = off
    n: int = 1  # samples per prompt (the GRPO group), sharing one prefill
    logprob_temperature: float = 1.0  # the returned log-probs are of logits / this
    stop_tokens: tuple[int, ...] = ()
    pad_id: int = 0
    prompt_bucket: int = 64  # prompt length: powers of two below this, multiples from it on
    batch_bucket: int = 8  # rows (prompts × n): powers of two below this, multiples from it on

    def __post_init__(self):
        object.__setattr__(self, "stop_tokens", tuple(int(t) for t in self.stop_tokens))
        checks = {
            "max_new_tokens >= 1": self.max_new_tokens >= 1,
            "temperature >= 0": self.temperature >= 0,
            "logprob_temperature > 0": self.logprob_temperature > 0,
            "top_k >= 0": self.top_k >= 0,
            "0 < top_p <= 1": 0 < self.top_p <= 1,
            "n >= 1": self.n >= 1,
            "prompt_bucket >= 1": self.prompt_bucket >= 1,
            "batch_bucket >= 1": self.batch_bucket >= 1,
        }
        failed = [rule for rule, ok in checks.items() if not ok]
        if failed:
            raise ValueError(f"invalid SamplingConfig ({', '.join(failed)} required): {self}")


@struct.dataclass
class Rollout:
    """Host (numpy) arrays; rows = prompts × n, the n samples of a prompt adjacent."""

    prompt_tokens: np.ndarray  # int32 [rows, P], left-padded with pad_id
    prompt_mask: np.ndarray  # int32 [rows, P], 1 on real prompt tokens
    tokens: np.ndarray  # int32 [rows, max_new_tokens], pad_id after a stop
    logprobs: np.ndarray  # float32 [rows, max_new_tokens], unmodified model; 0 off the mask
    mask: np.ndarray  # int32 [rows, max_new_tokens], 1 on generated tokens incl. the stop token
    lengths: np.ndarray  # int32 [rows], tokens per row (= mask.sum(1); + forced tool output)
    finish_reason: np.ndarray  # int32 [rows]: FINISH_STOP (0) or FINISH_LENGTH (1)
    prompt_index: np.ndarray  # int32 [rows]: which prompt each row continues


def bucket_size(size: int, bucket: int) -> int:
    """`size` rounded up to a power of two while below `bucket`, to a multiple of it above."""
    if size <= bucket:
        return min(bucket, 1 << max(size - 1, 0).bit_length())
    return -(-size // bucket) * bucket


def left_pad(prompts: Sequence[Sequence[int]], length: int, rows: int, pad_id: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """(tokens, mask) int32 [rows, length]: each prompt right-aligned, extra rows all padding."""
    tokens = np.full((rows, length), pad_id, np.int32)
    mask = np.zeros((rows, length), np.int32)
    for i, p in enumerate(prompts):
        tokens[i, length - len(p):] = p
        mask[i, length - len(p):] = 1
    return tokens, mask


def _segment_ends(steps: int) -> tuple[int, ...]:
    """Step counts at which the decode loop stops to grow the cache (the last one = steps)."""
    count = min(_MAX_SEGMENTS, max(1, steps // _SEGMENT_STEPS))
    return tuple(round(steps * (k + 1) / count) for k in range(count))


def _decode_fn(model: nn.Module, cfg: SamplingConfig, batch_axes,
               emit: Callable | None, on_trace: Callable[[], None]):
    """The pure prefill + decode computation for fixed shapes.

        run(params, prompt_tokens [B, P], prompt_mask [B, P], rng)
            -> tokens, logprobs [B*n, max_new_tokens], lengths, stopped [B*n]"""
    steps = cfg.max_new_tokens
    segment_ends = _segment_ends(steps)
    variables = lambda params: {"params": params}  # noqa: E731

    def constrain(x):
        """Batch dimension over the data-parallel axes; the rest left to the compiler."""
        if batch_axes is None or x.ndim == 0:
            return x
        spec = PartitionSpec(batch_axes, *[PartitionSpec.UNCONSTRAINED] * (x.ndim - 1))
        return jax.lax.with_sharding_constraint(x, spec)

    def repeat(x):  # the n samples of a prompt share its prefill
        return x if cfg.n == 1 or x.ndim == 0 else constrain(jnp.repeat(x, cfg.n, axis=0))

    def run(params, prompt_tokens, prompt_mask, rng):
        on_trace()
        batch, prompt_len = prompt_tokens.shape
        rows = batch * cfg.n
        cache = jax.tree.map(constrain, KVCache.init(model.cfg, batch,
                                                     prompt_len + segment_ends[0]))
        positions = positions_from_mask(prompt_mask)
        hidden, cache = model.apply(variables(params), prompt_tokens, positions, prompt_mask,
                                    cache=cache, features_only=True)
        # Only the last position's logits are needed: skip the LM head on the rest.
        logits = model.apply(variables(params), hidden[:, -1:], method="logits")[:, 0]
        real = prompt_mask.any(axis=-1)  # rows added by batch bucketing start finished
        cache = jax.tree.map(repeat, cache)
        row_keys = jax.vmap(jax.random.fold_in, (None, 0))(rng, jnp.arange(rows))
        state = dict(
            step=jnp.zeros((), jnp.int32), cache=cache, logits=repeat(logits),
            pos=repeat(positions[:, -1] + 1), done=~repeat(real),
            tokens=constrain(jnp.full((rows, steps), cfg.pad_id, jnp.int32)),
            logprobs=constrain(jnp.zeros((rows, steps), jnp.float32)),
            lengths=jnp.zeros((rows,), jnp.int32))

        def body(s):
            step, live = s["step"], ~s["done"]
            uniform = None
            if cfg.temperature > 0:
                uniform = jax.vmap(lambda k: jax.random.uniform(jax.random.fold_in(k, step))
                                   )(row_keys)
            token = sample_tokens(s["logits"], uniform, cfg.temperature, cfg.top_k, cfg.top_p)
            logits = s["logits"]
            if cfg.logprob_temperature != 1.0:
                logits = logits / cfg.logprob_temperature
            logp = token_logprobs_from_logits(logits, token)
            token = jnp.where(live, token, cfg.pad_id)
            logp = jnp.where(live, logp, 0.0)
            tokens = jax.lax.dynamic_update_slice(s["tokens"], token[:, None], (0, step))
            logprobs = jax.lax.dynamic_update_slice(s["logprobs"], logp[:, None], (0, step))
            done = s["done"]
            if cfg.stop_tokens:
                done = done | (live & jnp.isin(token, jnp.asarray(cfg.stop_tokens, jnp.int32)))
            if emit is not None:
                # The host may answer with rows to end now (a server's cancelled requests).
                cut = io_callback(emit, jax.ShapeDtypeStruct((rows,), jnp.bool_), step, token,
                                  ordered=True)
                done = done | (live & cut)
            # Finished rows still run (shapes are fixed) but write an invalid cache slot.
            logits, cache = model.apply(variables(params), token[:, None], s["pos"][:, None],
                                        live[:, None].astype(jnp.int32), cache=s["cache"])
            return dict(step=step + 1, cache=cache, logits=logits[:, 0], pos=s["pos"] + 1,
                        done=done, tokens=tokens, logprobs=logprobs,
                        lengths=s["lengths"] + live.astype(jnp.int32))

        for k, end in enumerate(segment_ends):
            if k:
                state["cache"] = jax.tree.map(constrain, state["cache"].grow(prompt_len + end))
            state = jax.lax.while_loop(
                lambda s, end=end: (s["step"] < end) & ~jnp.all(s["done"]), body, state)
        return state["tokens"], state["logprobs"], state["lengths"], state["done"]

    return run


def _to_host(x: jax.Array) -> np.ndarray:
    """The whole array on this host, gathering rows held by other processes in multi-host runs."""
    if x.is_fully_addressable:
        return np.asarray(jax.device_get(x))
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def _data_parallel(mesh: Mesh | None, rule_set) -> tuple[tuple[str, ...] | None, int]:
    """The mesh axes the rules put the activation batch on, and how many devices they span."""
    if mesh is None:
        return None, 1
    axes = nn.logical_to_mesh_axes(("act_batch",), rule_set)[0]
    if axes is None:
        return None, 1
    axes = (axes,) if isinstance(axes, str) else tuple(axes)
    return axes, math.prod(mesh.shape[a] for a in axes)


def _checked_prompts(prompts: Sequence[Sequence[int]], model_cfg, cfg: SamplingConfig
                     ) -> list[np.ndarray]:
    if not len(prompts):
        raise ValueError("generate() needs at least one prompt")
    prompts = [np.asarray(p, np.int64).reshape(-1) for p in prompts]
    if min(len(p) for p in prompts) == 0:
        raise ValueError("every prompt needs at least one token (e.g. <|bos|>)")
    vocab = model_cfg.vocab_size
    if any(((p < 0) | (p >= vocab)).any() for p in prompts):
        raise ValueError(f"prompt token ids must lie in [0, {vocab})")
    longest, limit = max(len(p) for p in prompts), model_cfg.max_seq_len
    if longest > limit - cfg.max_new_tokens:
        raise ValueError(f"a prompt of {longest} tokens + max_new_tokens={cfg.max_new_tokens} "
                         f"exceeds the model's max_seq_len={limit}: shorten the prompt to at "
                         f"most {limit - cfg.max_new_tokens} tokens or generate fewer tokens")
    return prompts


class Sampler:
    """Samples from one model on one mesh, compiling each shape once."""

    def __init__(self, model: nn.Module, *, mesh: Mesh | None = None, rules=None,
                 max_compiled: int = _MAX_COMPILED):
        self.model = model
        self.mesh = mesh
        self.rules = None if mesh is None else tuple(rules if rules is not None
                                                     else named_rules("dp"))
        self._batch_axes, self._data_devices = _data_parallel(mesh, self.rules)
        self._max_compiled = max_compiled
        self._compiled: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()
        # Streaming: the compiled loop calls `_emit`, which forwards to the callback of the
        # current call, so a new callback object (chat makes one per turn) is no recompile.
        self._stream_lock = threading.Lock()
        self._stream_target: Callable | None = None
        self.trace_count = 0  # how many times a decode function was traced (compiled)

    def _emit(self, step, tokens) -> np.ndarray:
        cut = None
        if self._stream_target is not None:
            cut = self._stream_target(step, tokens)
        if cut is None:
            return np.zeros(np.shape(tokens), np.bool_)
        return np.asarray(cut, np.bool_).reshape(np.shape(tokens))

    def _count_trace(self) -> None:
        self.trace_count += 1

    def _function(self, cfg: SamplingConfig, stream: bool):
        key = (cfg, stream)
        with self._lock:
            if key in self._compiled:
                self._compiled.move_to_end(key)
            else:
                self._compiled[key] = jax.jit(_decode_fn(
                    self.model, cfg, self._batch_axes, self._emit if stream else None,
                    self._count_trace))
                if len(self._compiled) > self._max_compiled:
                    self._compiled.popitem(last=False)
            return self._compiled[key]

    def generate(self, params, prompts: Sequence[Sequence[int]], rng: jax.Array,
                 cfg: SamplingConfig, *,
                 on_token: Callable[[np.ndarray, np.ndarray], None] | None = None) -> Rollout:
        """Sample `cfg.n` continuations of each prompt (token ids); deterministic for a given `rng`.

        `on_token(step, ids)` sees each step's ids; returning a bool per row ends rows early."""
        model, mesh = self.model, self.mesh
        prompts = _checked_prompts(prompts, model.cfg, cfg)
        longest, limit = max(len(p) for p in prompts), model.cfg.max_seq_len
        batch_axes, data_devices = self._batch_axes, self._data_devices
        # Prompt slots never exceed max_seq_len - max_new_tokens: the cache stays ≤ max_seq_len.
        prompt_len = min(bucket_size(longest, cfg.prompt_bucket), limit - cfg.max_new_tokens)
        batch = -(-bucket_size(len(prompts) * cfg.n, cfg.batch_bucket) // cfg.n)
        batch = -(-batch // data_devices) * data_devices
        tokens, mask = left_pad(prompts, prompt_len, batch, cfg.pad_id)

        fn = self._function(cfg, on_token is not None)
        # Streaming calls share `_emit`, so they run one at a time.
        with self._stream_lock if on_token is not None else contextlib.nullcontext():
            self._stream_target = on_token
            try:
                if mesh is None:
                    out = fn(params, tokens, mask, rng)
                else:
                    with jax.set_mesh(mesh), nn.logical_axis_rules(self.rules):
                        rows_sharding = NamedSharding(mesh, PartitionSpec(batch_axes))
                        out = fn(params, jax.device_put(tokens, rows_sharding),
                                 jax.device_put(mask, rows_sharding), rng)
                out_tokens, logprobs, lengths, stopped = (_to_host(x) for x in out)
                if on_token is not None:
                    jax.effects_barrier()  # every streamed step delivered before returning
            finally:
                self._stream_target = None

        rows = len(prompts) * cfg.n
        lengths = lengths[:rows].astype(np.int32)
        gen_mask = (np.arange(cfg.max_new_tokens)[None, :] < lengths[:, None]).astype(np.int32)
        return Rollout(
            prompt_tokens=np.repeat(tokens[:len(prompts)], cfg.n, axis=0),
            prompt_mask=np.repeat(mask[:len(prompts)], cfg.n, axis=0),
            tokens=out_tokens[:rows].astype(np.int32),
            logprobs=logprobs[:rows].astype(np.float32),
            mask=gen_mask, lengths=lengths,
            finish_reason=np.where(stopped[:rows], FINISH_STOP,
                                   FINISH_LENGTH).astype(np.int32),
            prompt_index=np.repeat(np.arange(len(prompts), dtype=np.int32), cfg.n))
