"""Preference pairs for the reward-model and DPO stages: files, or the built-in gold-ranked set.

The built-in set is cached in `<run>/preferences/`, and batches are a seeded permutation
walked epoch by epoch, so a resumed run sees an unbroken run's batches."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np

from llm_jax.data.chat import ChatTemplate
from llm_jax.data.global_batches import epoch_order, host_rows
from llm_jax.data.preferences import (
    PreferencePair,
    TokenizedPair,
    preference_batch,
    read_preferences,
    tokenize_pair,
)
from llm_jax.data.records import BadRecordStats
from llm_jax.errors import ConfigError, DataError
from llm_jax.generate.sampler import SamplingConfig
from llm_jax.recipes.gold import GoldLabeler, build_preference_set, rlhf_prompts

log = logging.getLogger(__name__)
CACHE_DIR = "preferences"  # inside the run directory
_SETTINGS = ("responses_per_prompt", "max_new_tokens", "temperature", "label_noise",
             "train_prompts", "heldout_prompts", "seed")


@dataclasses.dataclass(frozen=True)
class PreferenceSets:
    train: list[PreferencePair]
    heldout: list[PreferencePair]
    source: str  # "files" | "builtin"


def load_preference_sets(config: ml_collections.ConfigDict, run_dir: Path, tokenizer: Any,
                         template: ChatTemplate, parent: Callable[[], tuple[Any, Any]],
                         stats: BadRecordStats | None = None) -> PreferenceSets:
    """(train, held-out) pairs from `data.train_paths`, else the built-in gold set."""
    data, prefs = config.data, config.preferences
    if data.train_paths:
        read = lambda paths: list(read_preferences(  # noqa: E731
            paths, layout=prefs.layout, tokenizer=tokenizer, seq_len=data.seq_len,
            template=template, skip_bad=data.skip_bad, stats=stats))
        train = read(data.train_paths)
        if not train:
            raise DataError(f"{', '.join(data.train_paths)}: no preference pairs")
        heldout = read(data.val_paths) if data.val_paths else []
        if not heldout:
            train, heldout = split_by_prompt(train, prefs.heldout_fraction, data.train_paths)
        return PreferenceSets(train, heldout, "files")
    train, heldout = builtin_sets(prefs, Path(run_dir) / CACHE_DIR, tokenizer, template, parent)
    return PreferenceSets(train, heldout, "builtin")


def split_by_prompt(pairs: list[PreferencePair], fraction: float, paths: Sequence[str]
                    ) -> tuple[list[PreferencePair], list[PreferencePair]]:
    """Hold out the last `fraction` of the distinct prompts with all their pairs: pairs from
    one ranking share a prompt, and splitting them would leak held-out replies into training."""
    if not 0 < fraction < 1:
        raise ConfigError(f"preferences.heldout_fraction={fraction} must be in (0, 1)")
    keys = list(dict.fromkeys(_prompt_key(p) for p in pairs))
    if len(keys) < 2:
        raise DataError(f"{', '.join(paths)}: every pair has the same prompt; give held-out "
                        "pairs with --config.data.val_paths=...")
    held = set(keys[len(keys) - max(1, round(len(keys) * fraction)):])
    return ([p for p in pairs if _prompt_key(p) not in held],
            [p for p in pairs if _prompt_key(p) in held])


def _prompt_key(pair: PreferencePair) -> str:
    return json.dumps(pair.prompt_messages, sort_keys=True)


# ------------------------------------------------------------------ the built-in gold set
def _check_builtin(prefs: ml_collections.ConfigDict) -> None:
    if prefs.responses_per_prompt < 2:
        raise ConfigError(f"preferences.responses_per_prompt={prefs.responses_per_prompt}: "
                          "a ranking needs at least 2 replies per prompt")
    if not 0.0 <= prefs.label_noise <= 1.0:
        raise ConfigError(f"preferences.label_noise={prefs.label_noise} is not a probability")
    if prefs.train_prompts < 0 or prefs.heldout_prompts < 0:
        raise ConfigError("preferences.train_prompts and heldout_prompts must be >= 0")


def builtin_sets(prefs: ml_collections.ConfigDict, cache: Path, tokenizer: Any,
                 template: ChatTemplate, parent: Callable[[], tuple[Any, Any]]
                 ) -> tuple[list[PreferencePair], list[PreferencePair]]:
    """The gold-labelled (train, held-out) pairs: read from `cache` when a run already made
    them, else sampled from `parent()` and written there."""
    _check_builtin(prefs)
    settings = {k: prefs[k] for k in _SETTINGS}
    paths = {split: cache / f"{split}.jsonl" for split in ("train", "heldout")}
    if all(p.is_file() for p in paths.values()):
        saved = json.loads((cache / "settings.json").read_text()) \
            if (cache / "settings.json").is_file() else {}
        changed = {k: (saved.get(k), v) for k, v in settings.items() if saved.get(k) != v}
        if changed:
            log.warning("%s holds pairs made with other settings (%s); reading them anyway "
                        "(remove the folder to sample again)", cache,
                        ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changed.items()))
        return read_pairs(paths["train"]), read_pairs(paths["heldout"])

    try:
        cfg = SamplingConfig(max_new_tokens=prefs.max_new_tokens, temperature=prefs.temperature)
    except ValueError as e:
        raise ConfigError(f"preferences: {e}") from None
    sampler, params = parent()
    rng = jax.random.PRNGKey(prefs.seed)
    sets = {}
    for index, split in enumerate(("train", "heldout")):
        prompts = rlhf_prompts(split)
        limit = prefs[f"{split}_prompts"]
        prompts = prompts[:limit] if limit else prompts
        # Training labels carry the configured rater noise; held-out labels are the gold
        # judge's own, so held-out accuracy measures agreement with the gold preference.
        noise = prefs.label_noise if split == "train" else 0.0
        sets[split] = build_preference_set(
            sampler, params, tokenizer, template, prompts, prefs.responses_per_prompt,
            jax.random.fold_in(rng, index), GoldLabeler(noise=noise, seed=prefs.seed), cfg,
            label_rng=np.random.default_rng([prefs.seed, index]))
        if not sets[split]:
            raise DataError(f"the built-in {split} set has no pairs: the gold judge scored "
                            "every prompt's replies equal (raise preferences.temperature or "
                            "responses_per_prompt)")
    if jax.process_index() == 0:
        cache.mkdir(parents=True, exist_ok=True)
        for split, path in paths.items():
            write_pairs(path, sets[split])
        _write_atomic(cache / "settings.json", json.dumps(settings, indent=2) + "\n")
    log.info("built-in preference set: %d train / %d held-out pairs, written to %s",
             len(sets["train"]), len(sets["heldout"]), cache)
    return sets["train"], sets["heldout"]


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)  # a crash mid-write never leaves a half file to resume from


def write_pairs(path: Path, pairs: Sequence[PreferencePair]) -> None:
    """Pairs as JSONL in TRL's explicit layout plus `meta` (blanks allowed)."""
    lines = [json.dumps({"prompt": p.prompt_messages, "chosen": p.chosen,
                         "rejected": p.rejected, "meta": p.meta}) for p in pairs]
    _write_atomic(path, "".join(line + "\n" for line in lines))


def read_pairs(path: Path) -> list[PreferencePair]:
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            r = json.loads(line)
            pairs.append(PreferencePair(r["prompt"], r["chosen"], r["rejected"], r["meta"]))
        except (ValueError, KeyError, TypeError) as e:
            raise DataError(f"{path}:{number}: not a cached preference pair ({e}); remove "
                            f"{path.parent} to sample the set again") from None
    return pairs


# ------------------------------------------------------------------ tokens and batches
@dataclasses.dataclass(frozen=True)
class TokenizedPairs:
    pairs: list[TokenizedPair]
    margins: np.ndarray  # float32 [N]: each pair's `margin` (0 without one)

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def longest(self) -> int:
        return max((max(len(p.chosen_ids), len(p.rejected_ids)) for p in self.pairs), default=1)


def tokenize_pairs(pairs: Sequence[PreferencePair], tokenizer: Any, template: ChatTemplate,
                   seq_len: int) -> TokenizedPairs:
    """Every pair rendered with the chat template (prompts cut at the front to fit)."""
    out, margins = [], []
    for i, pair in enumerate(pairs):
        try:
            out.append(tokenize_pair(pair, tokenizer, template, seq_len))
            margins.append(float(pair.meta.get("margin", 0.0)))
        except (ValueError, TypeError) as e:
            raise DataError(f"preference pair {i} ({pair.prompt_messages[-1]['content'][:40]!r}"
                            f"...): {e}") from None
    return TokenizedPairs(out, np.asarray(margins, np.float32))


def batch_length(sets: Sequence[TokenizedPairs], seq_len: int, multiple: int = 16) -> int:
    """One row length for every batch of the run (one compiled step, and no row padded to
    `seq_len` when every pair is short): the longest sequence rounded up to `multiple`."""
    longest = max(s.longest for s in sets)
    return min(seq_len, -(-longest // multiple) * multiple)


def _batch(data: TokenizedPairs, rows: Sequence[int], size: int, length: int, pad_id: int
           ) -> dict[str, np.ndarray]:
    batch = preference_batch([data.pairs[i] for i in rows], length, pad_id, size)
    batch["margin"] = np.zeros(size, np.float32)
    batch["margin"][:len(rows)] = data.margins[list(rows)]
    return batch


class PairSchedule:
    """`schedule(iteration)`: this host's rows of the iteration's batch (iterations count from
    1), drawn from seeded per-epoch permutations of every pair."""

    def __init__(self, data: TokenizedPairs, *, batch_size: int, length: int, pad_id: int,
                 seed: int, host_index: int | None = None, host_count: int | None = None):
        if not len(data):
            raise DataError("no training pairs")
        if batch_size < 1:
            raise ConfigError(f"data.batch_size={batch_size} must be >= 1")
        self.data, self.batch_size, self.length, self.pad_id = data, batch_size, length, pad_id
        self.seed = seed
        self.host_index = jax.process_index() if host_index is None else host_index
        self.host_count = jax.process_count() if host_count is None else host_count

    def rows(self, iteration: int) -> list[int]:
        """Global pair indices of the iteration's batch."""
        return epoch_order(self.seed, len(self.data), (iteration - 1) * self.batch_size,
                           self.batch_size)

    def __call__(self, iteration: int) -> dict[str, np.ndarray]:
        rows = self.rows(iteration)
        rows = [rows[i] for i in host_rows(len(rows), self.host_index, self.host_count)]
        return _batch(self.data, rows, len(rows), self.length, self.pad_id)


def fixed_batches(data: TokenizedPairs, *, batch_size: int, length: int, pad_id: int,
                  host_index: int | None = None, host_count: int | None = None
                  ) -> list[dict[str, np.ndarray]]:
    """Every pair once, in order, in batches of `batch_size` rows (this host's share); the
    last batch is filled with rows of weight 0, so every batch has the training shape."""
    host_index = jax.process_index() if host_index is None else host_index
    host_count = jax.process_count() if host_count is None else host_count
    batches = []
    for start in range(0, len(data), batch_size):
        rows = list(range(start, min(start + batch_size, len(data))))
        slots = host_rows(batch_size, host_index, host_count)
        mine = [rows[s] for s in slots if s < len(rows)]
        batches.append(_batch(data, mine, len(slots), length, pad_id))
    return batches


def pair_iteration(step_fn: Callable, schedule: PairSchedule, put_batch: Callable, start: int,
                   prepare: Callable[[dict], dict] | None = None) -> Callable:
    """The loop's `iteration(state) -> (state, metrics)`: the next iteration's batch, on the
    mesh, with what `prepare(batch)` adds (e.g. reference log-probs), then one step."""
    iteration = start

    def step(state):
        nonlocal iteration
        iteration += 1
        batch = put_batch(schedule(iteration))
        if prepare is not None:
            batch.update(prepare(batch))
        return step_fn(state, batch)

    return step


@dataclasses.dataclass(frozen=True)
class PairData:
    """A pairwise stage's data: the training schedule and the held-out batches, one row
    length for both."""

    schedule: PairSchedule
    heldout_batches: list[dict[str, np.ndarray]]
    length: int


def pair_data(config: ml_collections.ConfigDict, run, tokenizer: Any, template: ChatTemplate,
              max_seq_len: int, parent: Callable, stage: str) -> PairData:
    """The reward-model and DPO stages' pairs (`load_preference_sets`), tokenized once and
    batched; the counts go to the log and the run's summary."""
    data, stats = config.data, BadRecordStats()
    sets = load_preference_sets(config, run.dir.path, tokenizer, template, parent, stats)
    seq_len = min(data.seq_len, max_seq_len)
    train, heldout = (tokenize_pairs(s, tokenizer, template, seq_len)
                      for s in (sets.train, sets.heldout))
    length = batch_length([train, heldout], seq_len)
    log.info("%s: %d train / %d held-out pairs (%s), rows of %d tokens", stage, len(train),
             len(heldout), sets.source, length)
    run.tracker.summary(train_pairs=len(train), heldout_pairs=len(heldout),
                        bad_records=stats.count)
    return PairData(
        PairSchedule(train, batch_size=data.batch_size, length=length, pad_id=tokenizer.pad_id,
                     seed=data.shuffle_seed),
        fixed_batches(heldout, batch_size=data.batch_size, length=length,
                      pad_id=tokenizer.pad_id), length)
