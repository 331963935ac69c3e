"""`llm-jax tokenize`: the tokens of a string (or a corpus) as a model sees them.

    llm-jax tokenize runs/sft_tiny/default "How many r's in strawberry?"
    llm-jax tokenize runs/sft_tiny/default --chat "What is 37 * 48?"   # the chat template's ids
    llm-jax tokenize --hf exported/ --ids "In the beginning"            # ids only
    llm-jax tokenize runs/sft_tiny/default --json "text"                # machine-readable
    llm-jax tokenize runs/sft_tiny/default --corpus "data/*.txt"         # bytes/token, top tokens

In a terminal each token is printed on its own background colour; elsewhere tokens are joined
by "|". A token is shown as the text it decodes to, or by its vocabulary piece where it
decodes to nothing printable on its own (special tokens such as `<|im_start|>`, a lone byte
`<0xE2>` of a multi-byte character). The word "strawberry" is two or three such pieces, none
of them a letter: that is why counting its r's is hard for a model.
"""

from __future__ import annotations

import collections
import json
import sys
from collections.abc import Sequence

from llm_jax.errors import ConfigError

# Background colours cycled over the tokens (ANSI 256-colour codes, light enough for black text).
_COLOURS = (153, 159, 194, 223, 225, 230)
_RESET = "\033[0m"


def token_rows(tokenizer, ids: Sequence[int]) -> list[dict]:
    """One `{"id", "piece", "text"}` per id: the vocabulary piece and what is shown for it."""
    rows = []
    for token in ids:
        piece = tokenizer.piece(token)
        text = tokenizer.decode([token])
        rows.append({"id": int(token), "piece": piece,
                     "text": text if text and "\ufffd" not in text else piece})
    return rows


def render_tokens(rows: Sequence[dict], colour: bool) -> str:
    """The tokens as one string: on coloured backgrounds, or joined by "|"."""
    if not colour:
        return "|".join(r["text"].replace("\n", "\\n") for r in rows)
    out = []
    for i, row in enumerate(rows):
        text = row["text"].replace("\n", "\u21b5")  # a visible newline
        out.append(f"\033[30;48;5;{_COLOURS[i % len(_COLOURS)]}m{text}{_RESET}")
        if row["text"].endswith("\n"):
            out.append("\n")
    return "".join(out)


def chat_ids(folder, tokenizer, text: str) -> list[int]:
    """`text` as a user turn through the model's chat template, ready for the reply."""
    from llm_jax.checkpoints.sources import chat_template_for

    template = chat_template_for(folder)
    return template.render_for_generation([{"role": "user", "content": text}], tokenizer)


def corpus_stats(tokenizer, patterns: Sequence[str], *, text_field: str = "text",
                 max_chars: int = 5_000_000, top: int = 20) -> dict:
    """Bytes per token over (the first `max_chars` characters of) a corpus, and its most
    frequent tokens."""
    from llm_jax.data.sources import read_documents

    counts: collections.Counter[int] = collections.Counter()
    n_bytes = n_chars = n_docs = 0
    for doc in read_documents(patterns, text_field=text_field):
        doc = doc[:max_chars - n_chars]
        counts.update(tokenizer.encode(doc))
        n_bytes += len(doc.encode("utf-8"))
        n_chars += len(doc)
        n_docs += 1
        if n_chars >= max_chars:
            break
    n_tokens = sum(counts.values())
    return {"documents": n_docs, "bytes": n_bytes, "tokens": n_tokens,
            "bytes_per_token": n_bytes / max(n_tokens, 1),
            "distinct_tokens": len(counts), "vocab_size": tokenizer.vocab_size,
            "top": [{**token_rows(tokenizer, [t])[0], "count": c, "share": c / n_tokens}
                    for t, c in counts.most_common(top)]}


def _print_corpus(stats: dict) -> None:
    print(f"{stats['documents']} documents, {stats['bytes']:,} bytes, {stats['tokens']:,} "
          f"tokens: {stats['bytes_per_token']:.2f} bytes per token; "
          f"{stats['distinct_tokens']:,} of {stats['vocab_size']:,} tokens used")
    print(f"{'rank':>4}  {'id':>6}  {'share':>6}  piece")
    for rank, row in enumerate(stats["top"], 1):
        print(f"{rank:>4}  {row['id']:>6}  {row['share']:>6.2%}  {row['piece']!r}")


def cmd_tokenize(args, overrides) -> int:
    from llm_jax.checkpoints.sources import load_tokenizer
    from llm_jax.data.tokenizer import Tokenizer

    words = list(args.words)
    folder = args.hf or (words.pop(0) if words else None)
    if not folder:
        raise ConfigError("give a RUN_DIR or --hf FOLDER")
    if len(words) > 1:
        raise ConfigError(f"one text at a time (quote it): got {len(words)} words {words}")
    args.text = words[0] if words else None
    if (args.text is None) == (not args.corpus):
        raise ConfigError("give a text to tokenize, or --corpus PATHS (not both)")
    tokenizer = Tokenizer.load(args.tokenizer) if args.tokenizer else load_tokenizer(folder)
    if args.corpus:
        stats = corpus_stats(tokenizer, args.corpus, text_field=args.text_field,
                             max_chars=args.max_chars, top=args.top)
        print(json.dumps(stats, ensure_ascii=False)) if args.json else _print_corpus(stats)
        return 0
    ids = chat_ids(folder, tokenizer, args.text) if args.chat else tokenizer.encode(args.text)
    rows = token_rows(tokenizer, ids)
    n_bytes = len(args.text.encode("utf-8"))
    if args.json:
        print(json.dumps({"text": args.text, "chat": args.chat, "tokens": rows,
                          "count": len(rows), "bytes": n_bytes}, ensure_ascii=False))
    elif args.ids:
        print(" ".join(str(r["id"]) for r in rows))
    else:
        print(render_tokens(rows, colour=sys.stdout.isatty() and not args.no_colour))
        print(f"{len(rows)} tokens, {n_bytes} bytes of text"
              + (" (with the chat template's tokens)" if args.chat else
                 f", {n_bytes / max(len(rows), 1):.2f} bytes per token"))
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("tokenize", help="show the tokens of a text (or a corpus's token "
                       "statistics) as a model sees them")
    p.add_argument("words", nargs="*", metavar="RUN_DIR TEXT",
                   help="a run directory and the text to tokenize (with --hf: the text)")
    p.add_argument("--hf", metavar="FOLDER", help="a Hugging Face folder's tokenizer instead")
    p.add_argument("--tokenizer", help="a sentencepiece .model instead of the folder's")
    shown = p.add_mutually_exclusive_group()
    shown.add_argument("--ids", action="store_true", help="print the token ids only")
    shown.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--chat", action="store_true",
                   help="render the text as a user turn through the chat template")
    p.add_argument("--no-colour", action="store_true", help="never colour the tokens")
    p.add_argument("--corpus", nargs="+", metavar="PATHS",
                   help="files, folders or globs (text, JSONL, Parquet): bytes per token and "
                   "the most frequent tokens")
    p.add_argument("--text-field", default="text", help="JSONL key / Parquet column (--corpus)")
    p.add_argument("--max-chars", type=int, default=5_000_000,
                   help="read at most this many characters of the corpus")
    p.add_argument("--top", type=int, default=20, help="most frequent tokens to list")
    p.set_defaults(func=cmd_tokenize, accepts_overrides=False)
