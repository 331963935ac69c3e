"""Dynamic batching: requests that arrive together share one call of the one sampler.

    batcher = Batcher(model, params, tokenizer, BatchConfig(max_batch=32, wait_ms=20))
    batcher.submit([job, ...])     # from any thread; a request's n rows go in together
    job.cancel()                   # the client went away: its row ends at the next step

One background thread takes the oldest waiting job, waits up to `wait_ms` for more jobs that
can share its compiled function (same temperature, top_p, stop tokens, tools, seed group),
and runs `Sampler.generate` (or `generate_with_tools`) on up to `max_batch` of them, one row
each. The sampler streams every step's ids back; each job decodes its own token into content
parts and hands them to its `deliver` callback, so streaming stays per request.

Slots: a row ends as soon as its request is done (stop token, stop string, its own
`max_tokens`, or a client that disconnected): the sampler is told to end it and the request
gets its final event at once. When requests that could share the batch are waiting and rows
are free, the batch ends early (after at least `join_steps` steps, so joins cannot thrash):
its unfinished rows go back to the front of the queue with what they generated so far as
their prompt, and the next call prefills them together with the newcomers. A continued row
is the same computation (a KV-cache decode equals a full forward), so greedy output does not
depend on when a request joined. Shapes are bucketed by the sampler (prompt length; rows in
powers of two up to `max_batch`) and here (new tokens), so new requests reuse compiled
functions; `warm()` compiles the common ones at start.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from collections.abc import Callable

import jax
import numpy as np

from llm_jax.generate.sampler import FINISH_STOP, Sampler, SamplingConfig, bucket_size
from llm_jax.serve.text import PartStream

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class BatchConfig:
    max_batch: int = 32  # rows (requests × n) in one sampler call
    wait_ms: float = 10.0  # how long the first waiting request waits for others to join
    token_bucket: int = 64  # new-token budgets round up to powers of two below this (fewer shapes)
    join_steps: int = 16  # waiting requests may join a running batch after this many steps


@dataclasses.dataclass(frozen=True)
class GroupKey:
    """What jobs must share to run in one compiled sampler call."""

    temperature: float
    top_p: float
    stop_tokens: tuple[int, ...]
    tools: bool
    seed_group: object = None  # a seeded request runs alone, so its seed fixes its output


@dataclasses.dataclass(eq=False)
class Job:
    """One row: a prompt to continue, for one choice of one request."""

    prompt: list[int]
    max_tokens: int
    key: GroupKey
    stream: PartStream
    deliver: Callable[[dict], None]  # {"parts": [...]} deltas, then {"finish": ..., "usage"}
    seed: int | None = None
    completion_tokens: int = 0
    tokens: list[int] = dataclasses.field(default_factory=list)  # sampled and forced, so far
    finish: str | None = None
    cancelled: bool = False
    paused: bool = False  # ended early so others can join; continues in the next batch

    def context(self) -> list[int]:
        """What the next sampler call continues: the prompt and everything generated."""
        return self.prompt + self.tokens

    def cancel(self) -> None:
        self.cancelled = True

    def take(self, token: int) -> bool:
        """A sampled token; True when the row must end here."""
        if self.finish is not None or self.paused:
            return True
        self.completion_tokens += 1
        self.tokens.append(token)
        if token in self.key.stop_tokens:
            return self._end("stop")
        deltas = self.stream.token(token)
        if deltas:
            self.deliver({"parts": deltas})
        if self.stream.stopped:
            return self._end("stop")
        if self.completion_tokens >= self.max_tokens:
            return self._end("length")
        return self._end("cancelled") if self.cancelled else False

    def take_forced(self, ids) -> None:
        """A tool's output, forced in by the engine (counts against max_tokens, as sampled)."""
        if self.finish is not None or self.paused:
            return
        ids = [int(t) for t in ids]
        self.completion_tokens += len(ids)
        self.tokens += ids
        self.deliver({"parts": self.stream.forced(ids)})
        if self.completion_tokens >= self.max_tokens:
            self._end("length")

    def _end(self, reason: str) -> bool:
        if self.finish is None:
            self.finish = reason
            tail = self.stream.flush()
            if tail:
                self.deliver({"parts": tail})
            self.deliver({"finish": reason, "prompt_tokens": len(self.prompt),
                          "completion_tokens": self.completion_tokens})
        return True


class Metrics:
    """Counters for GET /metrics (updated by the batcher thread, read by the app)."""

    def __init__(self):
        self.batch_sizes: collections.Counter = collections.Counter()
        self.requests = self.rows = self.tokens = self.cancelled = self.errors = 0
        self.active_rows = 0
        self.busy_seconds = 0.0

    def snapshot(self, queued: int) -> dict:
        return {"batches": sum(self.batch_sizes.values()),
                "batch_size_histogram": {str(k): v for k, v in sorted(self.batch_sizes.items())},
                "max_batch_size": max(self.batch_sizes, default=0),
                "requests": self.requests, "rows": self.rows, "completion_tokens": self.tokens,
                "cancelled_rows": self.cancelled, "errors": self.errors,
                "active_rows": self.active_rows, "queued_rows": queued,
                "busy_seconds": round(self.busy_seconds, 3)}


class Batcher:
    def __init__(self, model, params, tokenizer, cfg: BatchConfig = BatchConfig(), *,
                 tools=None, sampler: Sampler | None = None):
        self.model, self.params, self.tokenizer, self.cfg = model, params, tokenizer, cfg
        self.tools = tools
        self.sampler = sampler or Sampler(model)
        self.metrics = Metrics()
        self._waiting: collections.deque[Job] = collections.deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="batcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout=30)

    def submit(self, jobs: list[Job]) -> None:
        with self._cond:
            self.metrics.requests += 1
            self._waiting.extend(jobs)
            self._cond.notify_all()

    def queued(self) -> int:
        return len(self._waiting)

    def row_buckets(self) -> list[int]:
        """Every row count a batch compiles for (powers of two up to max_batch, and it)."""
        top = self.cfg.max_batch
        return sorted({bucket_size(n, top) for n in range(1, top + 1)})

    def warm(self, keys: list[GroupKey], max_tokens: int, prompt_len: int = 8,
             rows: list[int] | None = None) -> None:
        """Compile the sampler for each key at these row counts (default: every bucket)."""
        for key in keys:
            for rows_now in rows or self.row_buckets():
                prompt = [self.tokenizer.bos_id] * prompt_len
                self._generate([prompt] * rows_now, key, self._steps(max_tokens, prompt_len), 0,
                               on_token=lambda step, ids: None, on_round=None, on_forced=None)

    # ---- the batcher thread ----

    def _loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self.metrics.batch_sizes[len(batch)] += 1
            self.metrics.rows += len(batch)
            self.metrics.active_rows = len(batch)
            started = time.perf_counter()
            try:
                self._run(batch)
            except Exception as e:  # a bug must fail these requests, not the server
                log.exception("sampler call failed")
                self.metrics.errors += 1
                for job in batch:
                    if job.finish is None:
                        job.finish = "error"
                        job.deliver({"error": f"generation failed: {type(e).__name__}: {e}"})
            self.metrics.busy_seconds += time.perf_counter() - started
            self.metrics.active_rows = 0

    def _next_batch(self) -> list[Job] | None:
        with self._cond:
            while not self._waiting and not self._stopping:
                self._cond.wait()
            if self._stopping:
                return None
            key = self._waiting[0].key
            # Rows carried over from a batch that others joined do not wait again.
            wait = 0 if self._waiting[0].tokens else self.cfg.wait_ms / 1000
            deadline = time.monotonic() + wait
            while (sum(j.key == key for j in self._waiting) < self.cfg.max_batch
                   and (left := deadline - time.monotonic()) > 0 and not self._stopping):
                self._cond.wait(left)
            batch, rest = [], collections.deque()
            for job in self._waiting:
                (batch if job.key == key and len(batch) < self.cfg.max_batch else rest).append(job)
            self._waiting = rest
        live = []
        for job in batch:  # a client may have left while it waited
            if job.cancelled:
                self.metrics.cancelled += 1
                job._end("cancelled")
            else:
                live.append(job)
        return live or self._next_batch()

    def _steps(self, max_tokens: int, longest_prompt: int) -> int:
        """The batch's decode budget, from a fixed set of sizes (fewer compiled shapes) and
        within the context; rows it cuts short continue in the next batch."""
        room = self.model.cfg.max_seq_len - longest_prompt
        return max(1, min(bucket_size(max_tokens, self.cfg.token_bucket),
                          _bucket_floor(room, self.cfg.token_bucket)))

    def _run(self, batch: list[Job]) -> None:
        rows = list(range(len(batch)))  # which job each sampler row is (tools: per round)
        steps_run = 0

        def on_round(indices) -> None:
            rows[:] = list(indices)

        def on_token(step, ids) -> np.ndarray:
            ids = np.asarray(ids)
            cut = np.ones(len(ids), np.bool_)  # padding rows end at once
            for r, j in enumerate(rows):
                job = batch[j]
                was_live = job.finish is None and not job.paused
                cut[r] = job.take(int(ids[r]))
                if was_live and job.finish is not None:
                    self.metrics.active_rows -= 1
                    self.metrics.cancelled += job.finish == "cancelled"
                self.metrics.tokens += was_live
            nonlocal steps_run
            steps_run += 1
            if steps_run >= self.cfg.join_steps and self._others_can_join(batch):
                for job in batch:
                    job.paused = job.finish is None
                cut[:] = True
            return cut

        def on_forced(j, ids) -> None:
            batch[j].take_forced(ids)

        contexts = [job.context() for job in batch]
        steps = self._steps(max(j.max_tokens - j.completion_tokens for j in batch),
                            max(len(c) for c in contexts))
        first = batch[0]  # a seeded request runs alone: its seed (and progress) fix the draw
        seed = (hash((first.seed, first.completion_tokens)) % 2**31 if first.seed is not None
                else int(time.time_ns() % 2**31))
        rollout = self._generate(contexts, batch[0].key, steps, seed,
                                 on_token=on_token, on_round=on_round, on_forced=on_forced)
        context = self.model.cfg.max_seq_len
        carried = [job for j, job in enumerate(batch) if job.finish is None and (
            job.paused or (int(rollout.finish_reason[j]) != FINISH_STOP  # out of steps only
                           and len(job.context()) < context))]
        for job in carried:
            job.paused = False
        with self._cond:
            self._waiting.extendleft(reversed(carried))
        for j, job in enumerate(batch):  # rows the sampler ended itself (length, tool limit)
            if job.finish is None and job not in carried:
                job._end("stop" if int(rollout.finish_reason[j]) == FINISH_STOP else "length")
                self.metrics.active_rows -= 1

    def _others_can_join(self, batch: list[Job]) -> bool:
        """Requests wait that could share this batch, and it has free rows for them."""
        live = sum(job.finish is None for job in batch)
        if live >= self.cfg.max_batch:
            return False
        with self._cond:
            return any(job.key == batch[0].key for job in self._waiting)

    def _generate(self, prompts, key: GroupKey, steps: int, seed: int, *, on_token, on_round,
                  on_forced):
        cfg = SamplingConfig(max_new_tokens=steps, temperature=key.temperature, top_p=key.top_p,
                             stop_tokens=key.stop_tokens, pad_id=self.tokenizer.pad_id,
                             batch_bucket=self.cfg.max_batch)
        rng = jax.random.PRNGKey(seed)
        if key.tools and self.tools is not None:
            from llm_jax.generate.tools import generate_with_tools

            return generate_with_tools(self.sampler, self.params, prompts, rng, cfg,
                                       self.tokenizer, self.tools, on_token=on_token,
                                       on_forced=on_forced, on_round=on_round)
        return self.sampler.generate(self.params, prompts, rng, cfg, on_token=on_token)


def _bucket_floor(size: int, bucket: int) -> int:
    """The largest `bucket_size` value not above `size` (powers of two, then multiples)."""
    if size >= bucket:
        return size // bucket * bucket
    return 1 << max(size, 1).bit_length() - 1
