"""`llm-jax rank`: rank a model's sampled replies by hand, making preference data.

    llm-jax rank runs/sft_tiny/default --prompts prompts.txt --k 4 --out rankings.jsonl

Prompts: text lines, or JSONL with `prompt` (other fields kept as `meta`). Type an order best
to worst (`3 1 2 4`); `s` skips, `q` quits. Each ranked prompt appends a fsynced record with
0-based `ranking` indices into `responses`; a rerun skips ranked prompts and shows the same
replies (they depend only on seed and prompt)."""

from __future__ import annotations

import datetime
import json
import logging
import os
import zlib
from pathlib import Path
from typing import Any

from llm_jax.commands.models import _load, _sampling, _sampling_args, chat_template
from llm_jax.data.errors import DataError
from llm_jax.data.preferences import check_prompt
from llm_jax.data.records import BadRecordStats, file_kind, read_records
from llm_jax.errors import ConfigError

log = logging.getLogger(__name__)
Prompt = str | list[dict]


class _Quit(Exception):
    """The user asked to stop (q)."""


def prompt_key(prompt: Prompt) -> str:
    """One string per distinct prompt, text or messages."""
    return prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True)


def read_prompts(path: str) -> list[tuple[Prompt, dict]]:
    """(prompt, meta) pairs from a text file (one prompt per non-blank line) or JSONL."""
    if file_kind(Path(path)) in ("jsonl", "parquet"):
        def validate(record: dict) -> tuple[Prompt, dict]:
            if "prompt" not in record:
                raise ValueError(f"no field 'prompt' (fields: {', '.join(sorted(record))})")
            check_prompt(record["prompt"])
            return record["prompt"], {k: v for k, v in record.items() if k != "prompt"}

        return list(read_records([path], validate=validate))
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read prompts ({type(e).__name__}: {e})") from None
    return [(line.strip(), {}) for line in lines if line.strip()]


def repair_tail(path: Path) -> None:
    """Drop a torn last line (a write cut short by a crash) so new records start clean."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if data.endswith(b"\n"):
        return
    start = data.rfind(b"\n") + 1
    try:
        json.loads(data[start:])
    except ValueError:
        log.warning("%s: dropping a torn last line (%d bytes)", path, len(data) - start)
        with open(path, "r+b") as f:
            f.truncate(start)
        return
    with open(path, "ab") as f:  # a whole record without its newline: just end the line
        f.write(b"\n")


def ranked_prompts(path: Path) -> set[str]:
    """Keys of the prompts an output file already ranks (unreadable lines are skipped)."""
    if not path.is_file():
        return set()
    stats = BadRecordStats()
    keys = set(read_records([str(path)], skip_bad=True, stats=stats,
                            validate=lambda r: prompt_key(r["prompt"]) if "prompt" in r
                            else None))
    if stats.count:
        log.warning("%s: %d unreadable line(s) ignored", path, stats.count)
    return keys


def append_record(path: Path, record: dict[str, Any]) -> None:
    """One JSONL line, on disk (flushed and fsynced) before this returns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def parse_ordering(text: str, k: int) -> list[int] | str:
    """0-based indices best → worst from "3 1 2" (1-based, spaces or commas), or "s"/"q";
    ValueError with a one-line hint for anything else."""
    text = text.strip().lower()
    if text in ("s", "q"):
        return text
    try:
        numbers = [int(p) for p in text.replace(",", " ").split()]
    except ValueError:
        numbers = []
    if sorted(numbers) != list(range(1, k + 1)):
        example = " ".join(str(i) for i in [2, 1, *range(3, k + 1)][:k])
        raise ValueError(f"give each of 1..{k} once, best first (e.g. {example}); "
                         "s skips this prompt, q quits")
    return [n - 1 for n in numbers]


def _printable(text: str) -> str:
    # A barely trained model emits control bytes; shown raw they would drive the terminal.
    return "".join(c if c.isprintable() or c == "\n" else "\ufffd" for c in text)


def _show(number: int, total: int, prompt: Prompt, responses: list[str]) -> None:
    print(f"\n=== prompt {number}/{total}")
    if isinstance(prompt, str):
        print(_printable(prompt))
    else:
        for message in prompt:
            print(f"{message['role']}: {_printable(str(message['content']))}")
    for i, response in enumerate(responses, start=1):
        body = _printable(response).replace("\n", "\n    ") if response.strip() else "(empty)"
        print(f"[{i}] {body}")


def _ask(k: int) -> list[int] | None:
    """The ordering typed, None to skip; raises _Quit on q, EOFError at end of input."""
    while True:
        try:
            choice = parse_ordering(input("rank best to worst (s skip, q quit): "), k)
        except ValueError as e:
            print(e, flush=True)
            continue
        if choice == "q":
            raise _Quit
        return None if choice == "s" else choice


def _prompt_rng(seed: int, prompt: Prompt):
    import jax

    # crc32 rather than hash(): Python salts str hashes per process, and replies must repeat.
    return jax.random.fold_in(jax.random.PRNGKey(seed),
                              zlib.crc32(prompt_key(prompt).encode()) & 0x7FFFFFFF)


def cmd_rank(args, overrides) -> int:
    """Rank the prompts not yet in the output file; see the module doc."""
    from llm_jax.generate.sampler import Sampler
    from llm_jax.recipes.gold import sample_responses

    if args.k < 2:
        raise ConfigError(f"--k {args.k}: ranking needs at least 2 replies per prompt")
    out = Path(args.out)
    # A prompt listed twice is ranked once.
    prompts = list({prompt_key(p): (p, m) for p, m in read_prompts(args.prompts)}.values())
    repair_tail(out)
    done = ranked_prompts(out)
    todo = [(p, m) for p, m in prompts if prompt_key(p) not in done]
    if not todo:
        print(f"all {len(prompts)} prompts of {args.prompts} are ranked in {out}")
        return 0
    print(f"{len(prompts) - len(todo)} of {len(prompts)} prompts already ranked in {out}; "
          f"{len(todo)} to go", flush=True)
    model, params, tokenizer = _load(args)
    template, sampler = chat_template(args.run_dir, args.hf), Sampler(model)
    cfg = _sampling(args, tokenizer)
    model_name = str(Path(args.hf or args.run_dir).absolute())
    saved, status, why = 0, 0, "done"
    try:
        for number, (prompt, meta) in enumerate(todo, start=1):
            try:
                (responses,) = sample_responses(sampler, params, tokenizer, template, [prompt],
                                                args.k, _prompt_rng(args.seed, prompt), cfg)
            except ValueError as e:  # e.g. a prompt too long for the model
                print(f"prompt {number} skipped: {e}", flush=True)
                continue
            _show(number, len(todo), prompt, responses)
            ranking = _ask(args.k)
            if ranking is None:
                continue
            record = {"prompt": prompt, "responses": responses, "ranking": ranking,
                      "model": model_name, "seed": args.seed,
                      "time": datetime.datetime.now(datetime.UTC).isoformat(
                          timespec="seconds").replace("+00:00", "Z")}
            if meta:
                record["meta"] = meta
            append_record(out, record)
            saved += 1
    except _Quit:
        why = "quit"
    except EOFError:
        why = "end of input"
    except KeyboardInterrupt:
        why, status = "interrupted", 130
    ranked = len(prompts) - len(todo) + saved
    print(f"\n{why}: {saved} ranking(s) saved this session, {ranked} of {len(prompts)} "
          f"prompts ranked in {out}", flush=True)
    return status


def add_commands(sub) -> None:
    rank = sub.add_parser("rank", help="rank sampled replies by hand (preference data)")
    _sampling_args(rank, 64)
    rank.add_argument("--prompts", required=True,
                      help="a text file (one prompt per line) or JSONL with a 'prompt' field")
    rank.add_argument("--k", type=int, default=5, help="replies sampled per prompt")
    rank.add_argument("--out", default="rankings.jsonl", help="JSONL file rankings append to")
    # Replies must repeat across sessions, so the seed is fixed rather than the clock's.
    rank.set_defaults(func=cmd_rank, accepts_overrides=False, seed=0)
