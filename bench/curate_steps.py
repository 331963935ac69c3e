"""CPU seconds of every curation filter step on the demo WARC; one JSON line per figure.

    python bench/curate_steps.py [--experiment experiments/curate_tiny.py:resiliparse] [--shard 0]
    python bench/curate_steps.py --word-splitter spacy    # the peer: datatrove's spaCy splitter
    python bench/curate_steps.py --agreement              # filter decisions, fast vs spacy
    python bench/curate_steps.py --language               # language ID: max_chars vs whole pages
    python bench/curate_steps.py --datatrove-gopher       # the peer: datatrove's Gopher filters
    python bench/curate_steps.py --gopher                 # their decisions, fast vs datatrove's

Reads one shard of the demo WARC (built with apt on first use, see llm_jax/curate/demo_warc.py)
and runs the experiment's filter steps one after the other in this process, timing each with
`time.process_time()`: CPU time, so other jobs on a shared machine do not count, and pages per
CPU-second is the pages/s a core would give if it were ours. Trafilatura extracts in
datatrove's sandbox process, whose CPU time this process does not see: bench it with
`--extract-only`, which times both extractors in-process on the same pages.

`--agreement` runs the quality filters over every extracted English page of both shards with
each word splitter (config `word_splitter`) and counts the pages on which they decide the same
(kept, or dropped by the same filter for the same reason). `--language` does the same for
language ID on the first `language.max_chars` characters against whole pages. `--gopher`
runs each Gopher filter over the same pages as configured (`gopher_*.fast = True`) and as
datatrove's own class (False), interleaved page by page so that both see the same load, and
counts the pages on which they decide differently (must be 0).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from datatrove.data import Document

from llm_jax.config import get_experiment_config
from llm_jax.curate.language_model import language_identifier
from llm_jax.curate.plan import WORD_SPLITTERS
from llm_jax.curate.readers import LocatedWarcReader
from llm_jax.curate.run import demo_inputs
from llm_jax.curate.stages import filter_steps
from llm_jax.curate.steps import LangIdFilter, LocatedTrafilatura, Resiliparse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="experiments/curate_tiny.py:resiliparse")
    parser.add_argument("--shard", type=int, default=0)
    parser.add_argument("--extract-only", type=int, default=0, metavar="PAGES",
                        help="time resiliparse and trafilatura on the first PAGES pages")
    parser.add_argument("--word-splitter", choices=WORD_SPLITTERS, default=None,
                        help="override the experiment's word_splitter")
    parser.add_argument("--agreement", action="store_true",
                        help="filter decisions with the fast and the spaCy splitter")
    parser.add_argument("--language", action="store_true",
                        help="language ID decisions on language.max_chars vs whole pages")
    parser.add_argument("--datatrove-gopher", action="store_true",
                        help="datatrove's own Gopher filters (gopher_*.fast=False)")
    parser.add_argument("--gopher", action="store_true",
                        help="Gopher filters' decisions and CPU time, fast vs datatrove's")
    args = parser.parse_args()
    config = get_experiment_config(args.experiment)
    if args.word_splitter:
        config.word_splitter = args.word_splitter
    if args.datatrove_gopher:
        config.gopher_repetition.fast = config.gopher_quality.fast = False
    (folder,) = demo_inputs(config)
    if args.agreement:
        return agreement(config, folder)
    if args.language:
        return language_agreement(config, folder)
    if args.gopher:
        return gopher_agreement(config, folder)
    start = time.process_time()
    reader = LocatedWarcReader(folder, glob_pattern=f"demo-{args.shard:02d}.warc.gz")
    docs = list(reader.run())
    pages = len(docs)
    if args.extract_only:
        docs = docs[:args.extract_only]
        for extractor in (Resiliparse(), LocatedTrafilatura()):
            t = time.process_time()
            for doc in docs:
                extractor.extract(doc.text)
            cpu = time.process_time() - t
            print(json.dumps({"figure": f"extract/{type(extractor).__name__}", "pages": len(docs),
                              "cpu_s": round(cpu, 2),
                              "pages_per_cpu_s": round(len(docs) / cpu, 1)}))
        return
    cpu = {"read": time.process_time() - start}
    for label, step in filter_steps(config, Path(tempfile.mkdtemp())):
        t = time.process_time()
        docs = list(step.run(iter(docs)))
        cpu[label] = time.process_time() - t
    total = sum(cpu.values())
    for label, seconds in cpu.items():
        print(json.dumps({"figure": f"step/{label}", "cpu_s": round(seconds, 2),
                          "share": round(seconds / total, 3)}))
    print(json.dumps({"figure": "filter_stage", "experiment": args.experiment,
                      "word_splitter": config.word_splitter, "pages": pages,
                      "kept": len(docs), "cpu_s": round(total, 1),
                      "pages_per_cpu_s": round(pages / total, 1)}))


QUALITY = ("gopher_repetition", "gopher_quality", "c4", "fineweb")


def decisions(config, texts: list[str]) -> tuple[list[str], float]:
    """Per page, "kept" or "<filter>:<reason>" of the first quality filter that drops it."""
    steps = [(label, step) for label, step in filter_steps(config, Path(tempfile.mkdtemp()))
             if label in QUALITY]
    verdicts, start = [], time.process_time()
    for text in texts:
        doc, verdict = Document(text=text, id="x"), "kept"
        for label, step in steps:
            result = step.filter(doc)  # C4 rewrites doc.text, as it does in the pipeline
            if result is not True:
                verdict = f"{label}:{result[1] if isinstance(result, tuple) else ''}"
                break
        verdicts.append(verdict)
    return verdicts, time.process_time() - start


def extracted(config, folder: str, until: str) -> list[str]:
    """The texts of both shards after the filter steps before `until`."""
    docs = list(LocatedWarcReader(folder).run())
    for label, step in filter_steps(config, Path(tempfile.mkdtemp())):
        if label == until:
            break
        docs = list(step.run(iter(docs)))
    return [doc.text for doc in docs]


def language_agreement(config, folder: str) -> None:
    texts = extracted(config, folder, "language")
    language_identifier()  # the model loads once per process: kept out of both timings
    runs = {}
    for max_chars in (0, config.language.max_chars):
        step = LangIdFilter(tuple(config.language.languages), config.language.threshold,
                            max_chars)
        start = time.process_time()
        runs[max_chars] = [step.filter(Document(text=t, id="x")) for t in texts]
        runs[max_chars] = runs[max_chars], time.process_time() - start
    (whole, whole_s), (cut, cut_s) = runs.values()
    print(json.dumps({"figure": "language_max_chars", "max_chars": config.language.max_chars,
                      "pages": len(texts),
                      "same_decision": round(sum(a == b for a, b in zip(whole, cut))
                                             / len(texts), 4),
                      "cpu_s_whole": round(whole_s, 2), "cpu_s_max_chars": round(cut_s, 2)}))


def gopher_agreement(config, folder: str) -> None:
    from datatrove.utils.text import split_into_parts

    texts = extracted(config, folder, "gopher_repetition")
    for label in ("gopher_repetition", "gopher_quality"):
        steps = {}
        for fast in (True, False):
            config[label].fast = fast
            steps[fast] = dict(filter_steps(config, Path(tempfile.mkdtemp())))[label]
        results, cpu = {True: [], False: []}, {True: 0.0, False: 0.0}
        for text in texts:
            for fast, step in steps.items():
                split_into_parts.cache_clear()  # each call splits the page itself
                start = time.process_time()
                results[fast].append(step.filter(Document(text=text, id="x")))
                cpu[fast] += time.process_time() - start
        print(json.dumps({"figure": label, "pages": len(texts),
                          "differ": sum(a != b for a, b in zip(results[True], results[False])),
                          "kept": results[True].count(True),
                          "cpu_s_fast": round(cpu[True], 2),
                          "cpu_s_datatrove": round(cpu[False], 2),
                          "speedup": round(cpu[False] / cpu[True], 2)}))


def agreement(config, folder: str) -> None:
    # URL filter, extraction, language ID: the splitter plays no part
    texts = extracted(config, folder, "gopher_repetition")
    runs = {}
    for name in WORD_SPLITTERS:
        config.word_splitter = name
        runs[name] = decisions(config, texts)
    (fast, fast_s), (spacy, spacy_s) = runs["fast"], runs["spacy"]
    same = sum(a == b for a, b in zip(fast, spacy))
    same_keep = sum((a == "kept") == (b == "kept") for a, b in zip(fast, spacy))
    print(json.dumps({"figure": "agreement", "pages": len(texts),
                      "same_decision": round(same / len(texts), 4),
                      "same_keep_or_drop": round(same_keep / len(texts), 4),
                      "kept_fast": fast.count("kept"), "kept_spacy": spacy.count("kept"),
                      "differ": sorted(f"{b} -> {a}" for a, b in zip(fast, spacy) if a != b),
                      "filters_cpu_s_fast": round(fast_s, 2),
                      "filters_cpu_s_spacy": round(spacy_s, 2)}))


if __name__ == "__main__":
    main()
