"""CPU seconds of every curation filter step on the demo WARC; one JSON line per figure.

    python bench/curate_steps.py [--experiment experiments/curate_tiny.py:resiliparse] [--shard 0]

Reads one shard of the demo WARC (built with apt on first use, see llm_jax/curate/demo_warc.py)
and runs the experiment's filter steps one after the other in this process, timing each with
`time.process_time()`: CPU time, so other jobs on a shared machine do not count, and pages per
CPU-second is the pages/s a core would give if it were ours. Trafilatura extracts in
datatrove's sandbox process, whose CPU time this process does not see: bench it with
`--extract-only`, which times both extractors in-process on the same pages.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from llm_jax.config import get_experiment_config
from llm_jax.curate.readers import LocatedWarcReader
from llm_jax.curate.run import demo_inputs
from llm_jax.curate.stages import filter_steps
from llm_jax.curate.steps import LocatedTrafilatura, Resiliparse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="experiments/curate_tiny.py:resiliparse")
    parser.add_argument("--shard", type=int, default=0)
    parser.add_argument("--extract-only", type=int, default=0, metavar="PAGES",
                        help="time resiliparse and trafilatura on the first PAGES pages")
    args = parser.parse_args()
    config = get_experiment_config(args.experiment)
    (folder,) = demo_inputs(config)
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
    print(json.dumps({"figure": "filter_stage", "experiment": args.experiment, "pages": pages,
                      "kept": len(docs), "cpu_s": round(total, 1),
                      "pages_per_cpu_s": round(pages / total, 1)}))


if __name__ == "__main__":
    main()
