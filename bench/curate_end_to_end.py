"""`llm-jax data prepare` end to end on the demo WARC, whole or repeated; one JSON line a figure.

    python bench/curate_end_to_end.py [--experiment experiments/curate_tiny.py:resiliparse]
    python bench/curate_end_to_end.py --repeat 4    # the two shards copied 4x: 1,820 pages
    python bench/curate_end_to_end.py --config.word_splitter=spacy    # overrides are passed on

Runs the command in a fresh run directory (runs/curate_bench/, so nothing is resumed) and
reports pages per second per core (pages read / wall seconds / cores), the CPU seconds of the
command and all its processes (pages per CPU-second: what a core would give if nothing else
ran; only forked workers are counted, so with another executor.start_method it is left out),
and the wall time of each stage from datatrove's task logs, with the start-up before the
first stage, the time between stages and the report (and exit) after the last. `--repeat`
copies the WARC shards so that the fixed costs (start-up, the dedup stages, the report) are
shared by more pages; the copies are exact duplicates, which exact dedup removes.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from llm_jax.config import get_experiment_config
from llm_jax.curate.run import demo_inputs

STAMP = "%Y-%m-%d %H:%M:%S.%f"


def stage_spans(logs: Path) -> dict[str, tuple[float, float]]:
    """stage -> (first task launched, last task done), POSIX seconds, from the task logs."""
    spans = {}
    for stage in logs.iterdir():
        starts, ends = [], []
        for log in (stage / "logs").glob("task_*.log"):
            lines = log.read_text(encoding="utf-8").splitlines()
            stamped = [line[:23] for line in lines if line[:4].isdigit()]
            starts.append(datetime.datetime.strptime(stamped[0], STAMP).timestamp())
            ends.append(datetime.datetime.strptime(stamped[-1], STAMP).timestamp())
        if starts:
            spans[stage.name] = (min(starts), max(ends))
    return dict(sorted(spans.items(), key=lambda item: item[1][0]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="experiments/curate_tiny.py:resiliparse")
    parser.add_argument("--repeat", type=int, default=1, help="copies of the WARC shards")
    parser.add_argument("--name", default="", help="run directory under runs/curate_bench/")
    args, overrides = parser.parse_known_args()  # --config.KEY=VALUE ...: passed on
    config = get_experiment_config(args.experiment)
    (folder,) = demo_inputs(config)
    bench_dir = Path("runs/curate_bench")
    tag = f"{Path(args.experiment.split(':')[0]).stem}-{args.experiment.partition(':')[2]}"
    run_dir = bench_dir / (args.name or f"{tag}-x{args.repeat}")
    shutil.rmtree(run_dir, ignore_errors=True)
    if args.repeat > 1:
        inputs = bench_dir / f"warc-x{args.repeat}"
        if not inputs.exists():
            inputs.mkdir(parents=True)
            for copy in range(args.repeat):
                for shard in sorted(Path(folder).iterdir()):
                    shutil.copy(shard, inputs / f"r{copy}-{shard.name}")
        overrides.append(f"--config.input.paths=('{inputs.resolve()}',)")
    command = ["llm-jax", "data", "prepare", args.experiment, "--workdir", str(run_dir),
               "--config.wandb.mode=disabled", *overrides]
    load_before = os.getloadavg()[0]  # other jobs on the machine: 1-minute load average
    start = time.time()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.time()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    forked = not any("start_method" in o and not o.endswith("=fork") for o in overrides)
    cpu_s = usage.ru_utime + usage.ru_stime if forked else None
    summary = json.loads((run_dir / "summary.json").read_text())
    pages, wall_s = summary["documents_read"], end - start
    print(json.dumps({"figure": "end_to_end", "experiment": args.experiment,
                      "repeat": args.repeat, "pages": pages,
                      "kept": summary["documents_kept"], "wall_s": round(wall_s, 1),
                      "cores": summary["cores"],
                      "pages_per_s_per_core": round(pages / wall_s / summary["cores"], 2),
                      "cpu_s": cpu_s and round(cpu_s, 1),
                      "pages_per_cpu_s": cpu_s and round(pages / cpu_s, 1),
                      "load_before": round(load_before, 2),
                      "load_after": round(os.getloadavg()[0], 2),
                      "command": " ".join(command)}))
    spans = stage_spans(run_dir / "logs")
    first, last = min(s for s, _ in spans.values()), max(e for _, e in spans.values())
    print(json.dumps({"figure": "stage/start_up", "wall_s": round(first - start, 1)}))
    for stage, (s, e) in spans.items():
        print(json.dumps({"figure": f"stage/{stage}", "wall_s": round(e - s, 1)}))
    # between one stage's last task and the next one's first: pools, managers, bookkeeping
    between = (last - first) - sum(e - s for s, e in spans.values())
    print(json.dumps({"figure": "stage/between_stages", "wall_s": round(between, 2)}))
    print(json.dumps({"figure": "stage/report", "wall_s": round(end - last, 1)}))


if __name__ == "__main__":
    sys.exit(main())
