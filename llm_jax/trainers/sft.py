"""Supervised fine-tuning on chat-templated conversations, loss on assistant tokens only.

    llm-jax train experiments/sft_tiny.py        # from runs/pretrain_tiny/default"""

from __future__ import annotations

import logging
import random
from pathlib import Path

import jax
import ml_collections

from llm_jax.checkpoints.sources import chat_template_for
from llm_jax.data.chat import identity_system_message, sft_example
from llm_jax.data.conversations import read_conversations
from llm_jax.data.pipeline import eval_batches, packed_batches
from llm_jax.data.records import BadRecordStats
from llm_jax.errors import ConfigError, DataError
from llm_jax.generate.tools import make_tools
from llm_jax.train.setup import start_run

log = logging.getLogger(__name__)
SFT_FIELDS = ("inputs", "targets", "loss_mask")


def chat_template(run_dir: Path, sft: ml_collections.ConfigDict):
    """A Hub model's own template when the run started from one, else ours (with the
    identity system message when `sft.system`)."""
    system = identity_system_message(sft.identity_name, sft.identity_maker) if sft.system \
        else None
    return chat_template_for(run_dir, system)


def load_conversations(config: ml_collections.ConfigDict, tokenizer, template,
                       stats: BadRecordStats):
    """(train conversations, held-out conversations, evaluation questions)."""
    data, sft = config.data, config.sft
    if data.train_paths:
        read = lambda paths: list(read_conversations(  # noqa: E731
            paths, layout=sft.layout, tokenizer=tokenizer, seq_len=data.seq_len,
            template=template, skip_bad=data.skip_bad, stats=stats))
        train = read(data.train_paths)
        heldout = read(data.val_paths) if data.val_paths else []
        if not heldout:
            n = max(1, len(train) // 50)
            if len(train) < 2:
                raise DataError(f"{', '.join(data.train_paths)}: a single conversation; give "
                                "held-out ones with --config.data.val_paths=...")
            train, heldout = train[:-n], train[-n:]
        # Replies to the held-out conversations' first questions: do they end properly?
        firsts = [next((m["content"] for m in c if m["role"] == "user"), None) for c in heldout]
        questions = {"identity": [], "math": [],
                     "extra": [q for q in firsts if isinstance(q, str)][:sft.eval_math]}
        if sft.replay:  # the files' conversations among the built-in mixture's
            mixture = builtin_mixture(config, size=sft.replay)[0]
            train = train + mixture
            random.Random(data.shuffle_seed).shuffle(train)
    else:
        train, heldout, questions = builtin_mixture(config)
    return train, heldout, questions


def builtin_mixture(config: ml_collections.ConfigDict, size: int | None = None):
    """The built-in mixture plus the held-out prompts the chat evaluation asks."""
    from llm_jax.data.corpus import default_corpus
    from llm_jax.data.splits import DEFAULT_HELDOUT_FRACTION
    from llm_jax.recipes.math.sources import stratified_heldout
    from llm_jax.recipes.sft_mixture import build_mixture
    from llm_jax.recipes.sft_passages import load_books
    from llm_jax.recipes.sft_people import identity_eval_questions

    sft = config.sft
    for key in ("answer_first", "math_calculator", "math_answer_only"):
        if not 0 <= sft[key] <= 1:
            raise ConfigError(f"sft.{key}={sft[key]}: a share of the math replies, 0 to 1")
    book_paths = list(sft.books) or [str(p) for p in sum(default_corpus(), [])]
    train, heldout = build_mixture(
        config.data.shuffle_seed, size=size or sft.mixture_size, eval_size=sft.eval_size,
        name=sft.identity_name, maker=sft.identity_maker, books=load_books(book_paths),
        weights=sft.weights.to_dict(), levels=tuple(sft.math_levels),
        answer_first=sft.answer_first, working=sft.math_working,
        calculator=sft.math_calculator, answer_only=sft.math_answer_only)
    # The RL stage's held-out arithmetic (same levels, seed 0, the same number per level):
    # the SFT figure and the RL stage's starting figure are one measurement.
    math = stratified_heldout(sft.math_levels, sft.eval_math, seed=0,
                              heldout_fraction=DEFAULT_HELDOUT_FRACTION)
    questions = {"identity": list(identity_eval_questions()), "math": math, "extra": []}
    return [r["messages"] for r in train], [r["messages"] for r in heldout], questions


def main(config: ml_collections.ConfigDict, run_dir: Path) -> dict[str, float]:
    """Fine-tune (or resume) the run in `run_dir`; returns the final evaluation metrics."""
    with start_run(config, run_dir, stage="sft") as run:
        # --- tokenizer, template, data
        tokenizer = run.parent_tokenizer()
        template = chat_template(run.dir.path, config.sft)
        stats = BadRecordStats()
        train, heldout, questions = load_conversations(config, tokenizer, template, stats)
        seq_len, batch = config.data.seq_len, config.data.batch_size
        to_example = lambda messages: sft_example(messages, tokenizer, template)  # noqa: E731
        data_iter = packed_batches(
            train, to_example, seq_len=seq_len, batch_size=batch, seed=config.data.shuffle_seed,
            fields=SFT_FIELDS, split=False, host_index=jax.process_index(),
            host_count=jax.process_count())
        log.info("SFT: %d train / %d held-out conversations", len(train), len(heldout))

        val = eval_batches(heldout, to_example=to_example, seq_len=seq_len, batch_size=batch,
                           max_batches=config.train.eval_batches,
                           host_index=jax.process_index(), host_count=jax.process_count(),
                           fields=SFT_FIELDS)
        # the LM loss on assistant tokens only (the rows' loss_mask); under LoRA, adapters on
        # a frozen base, evaluations see merged weights
        def started(start: int) -> None:
            if stats.count:
                run.tracker.summary(bad_records=stats.count)

        return run.train_lm(
            run.model_config(tokenizer.vocab_size), data_iter, val, tokenizer, started=started,
            template=template, chat_questions=questions, identity_name=config.sft.identity_name,
            tools=make_tools(tokenizer, config.tools.to_dict()))
