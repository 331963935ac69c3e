"""`llm-jax index` and `llm-jax probe`: what a model can look up, and what it knows.

    llm-jax index books/ --out runs/index/books                 # BM25 over the passages
    llm-jax index data.jsonl --text-field body --out index/ --query "Emma Woodhouse"
    llm-jax probe runs/sft_tiny/default                         # -> runs/sft_tiny/default/probe/
    llm-jax probe RUN --baseline BEFORE/probe/probe.jsonl       # refusals vs what was known
    llm-jax probe RUN --search runs/index/books                 # answer with the search tool

`probe` asks template-made factual questions about the run's own training text (the
pretraining stage's `data.train_paths`, else the default corpus; or `--corpus`), samples K
answers each and writes, in its output folder: `probe.jsonl` (per question: the reference,
the correct and refusal fractions, the known/unknown label, the answers), `refusal_sft.jsonl`
(SFT conversations from the train split, see `eval/probe.py`) and `metrics.json`.
"""

from __future__ import annotations

import time
from pathlib import Path

from llm_jax.errors import DataError


def cmd_index(args, overrides) -> int:
    from llm_jax.generate.search import SearchIndex, build_search_index

    start = time.perf_counter()
    count = build_search_index(args.corpus, args.out, text_field=args.text_field,
                               passage_chars=args.passage_chars)
    print(f"indexed {count} passages of {', '.join(args.corpus)} into {args.out} "
          f"({time.perf_counter() - start:.1f} s)")
    if args.query:
        index = SearchIndex.load(args.out, k=args.k)
        for text, score in index.search(args.query):
            print(f"{score:7.3f}  {text[:160]}")
    return 0


def cmd_probe(args, overrides) -> int:
    from llm_jax.commands.models import _load, chat_template, tool_settings
    from llm_jax.generate.tools import make_tools
    from llm_jax.recipes.probes import ProbeSettings
    from llm_jax.trainers.probe import book_texts, probe_to_dir, read_table, training_corpus

    settings = ProbeSettings(samples=args.samples, temperature=args.temperature,
                             top_k=args.top_k, top_p=args.top_p,
                             max_new_tokens=args.max_new_tokens, known_at=args.known_at,
                             unknown_at=args.unknown_at, seed=args.seed,
                             refusal_ratio=args.refusal_ratio, search_query=args.search_query)
    baseline = read_table(args.baseline) if args.baseline else None
    if not args.corpus and not args.run_dir:
        raise DataError("--hf: give the text to make questions from with --corpus PATHS")
    texts = book_texts(args.corpus or training_corpus(args.run_dir))
    model, params, tokenizer = _load(args)
    template = chat_template(args.run_dir, args.hf)
    if template is None:
        raise DataError(f"{args.run_dir or args.hf}: a base model; probing asks a chat model")
    out = Path(args.out or Path(args.run_dir or args.hf) / "probe")
    metrics = probe_to_dir(model, params, tokenizer, template, texts, settings, out,
                           per_kind=args.per_kind, heldout_fraction=args.heldout_fraction,
                           arithmetic=args.arithmetic, search_practice=args.search_practice,
                           tools=make_tools(tokenizer, tool_settings(args)), baseline=baseline)
    counts = metrics["counts"]
    print(f"{counts['questions']} questions; train split: {counts['known']} known, "
          f"{counts['unknown']} unknown, {counts['unsure']} unsure -> "
          f"{counts['conversations']} conversations")
    for split in ("train", "heldout"):
        print(f"{split}: " + ", ".join(f"{k}={v:.3f}" for k, v in metrics[split].items()))
    print(f"wrote {out}/probe.jsonl, refusal_sft.jsonl, metrics.json")
    return 0


def add_commands(sub) -> None:
    from llm_jax.commands.models import _sampling_args
    from llm_jax.recipes.probes import SEARCH_QUERIES, ProbeSettings

    defaults = ProbeSettings()
    probe = sub.add_parser("probe", help="ask a chat model questions about its training text: "
                           "what it knows, and refusal SFT data for what it does not")
    _sampling_args(probe, defaults.max_new_tokens)
    probe.set_defaults(seed=defaults.seed, temperature=defaults.temperature,
                       top_k=defaults.top_k, top_p=defaults.top_p)
    probe.add_argument("--corpus", nargs="+", metavar="PATHS",
                       help="text to make questions from (default: the run's training text)")
    probe.add_argument("--per-kind", type=int, default=100, help="questions of each kind")
    probe.add_argument("--arithmetic", type=int, default=0,
                       help="generated arithmetic questions to add (level 1)")
    probe.add_argument("--heldout-fraction", type=float, default=0.25)
    probe.add_argument("--samples", type=int, default=defaults.samples, help="answers (K)")
    probe.add_argument("--known-at", type=float, default=defaults.known_at,
                       help="correct fraction from which a question is known")
    probe.add_argument("--unknown-at", type=float, default=defaults.unknown_at,
                       help="correct fraction up to which a question is unknown")
    probe.add_argument("--refusal-ratio", type=float, default=defaults.refusal_ratio,
                       help="at most this many refusals per kept answer (0: all)")
    probe.add_argument("--search-query", choices=SEARCH_QUERIES, default=defaults.search_query,
                       help="search data searches for the question's query, or the question")
    probe.add_argument("--search-practice", type=int, default=0, metavar="N",
                       help="with --search: N more train-split questions as search data")
    probe.add_argument("--baseline", metavar="PROBE_JSONL",
                       help="the model before: refusals are scored against its labels")
    probe.add_argument("--out", help="output folder (default RUN_DIR/probe)")
    probe.set_defaults(func=cmd_probe, accepts_overrides=False)

    index = sub.add_parser("index", help="build the search tool's BM25 index over a corpus")
    index.add_argument("corpus", nargs="+", help="files, folders or globs (text, JSONL, Parquet)")
    index.add_argument("--out", required=True, help="the index folder (tools.search.index)")
    index.add_argument("--text-field", default="text", help="JSONL key / Parquet column")
    index.add_argument("--passage-chars", type=int, default=500,
                       help="longest passage, in characters (paragraphs are cut at line ends)")
    index.add_argument("--query", help="then search the new index for this")
    index.add_argument("-k", type=int, default=3, help="passages --query shows")
    index.set_defaults(func=cmd_index, accepts_overrides=False)
