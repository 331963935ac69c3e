"""`llm-jax index` and `llm-jax probe`: what a model can look up, and what it knows.

    llm-jax index books/ --out runs/index/books                 # BM25 over the passages
    llm-jax index data.jsonl --text-field body --out index/ --query "Emma Woodhouse"
"""

from __future__ import annotations

import time


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


def add_commands(sub) -> None:
    index = sub.add_parser("index", help="build the search tool's BM25 index over a corpus")
    index.add_argument("corpus", nargs="+", help="files, folders or globs (text, JSONL, Parquet)")
    index.add_argument("--out", required=True, help="the index folder (tools.search.index)")
    index.add_argument("--text-field", default="text", help="JSONL key / Parquet column")
    index.add_argument("--passage-chars", type=int, default=500,
                       help="longest passage, in characters (paragraphs are cut at line ends)")
    index.add_argument("--query", help="then search the new index for this")
    index.add_argument("-k", type=int, default=3, help="passages --query shows")
    index.set_defaults(func=cmd_index, accepts_overrides=False)
