"""Whether two curation runs produced the same data: output texts, removed documents, counts.

    python bench/curate_same_output.py runs/curate_bench/before runs/curate_bench/after

Compares, file by file, the output Parquet rows (`text`, `id`, `url`), every filter's removed
documents (`removed/<step>/*.jsonl`: text and reason) and the report's table without its
timing columns. Prints one JSON line; exits 1 when anything differs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pyarrow.parquet as pq

TIME_COLUMNS = (7, 8)  # "time (s)" and "share of step time" in curation_report.md's table


def output_rows(run_dir: Path) -> dict[str, list[dict]]:
    return {p.relative_to(run_dir).as_posix(): pq.read_table(p).to_pylist()
            for p in sorted((run_dir / "data").rglob("*.parquet"))}


def removed_docs(run_dir: Path) -> dict[str, list[tuple[str, str]]]:
    found = {}
    for path in sorted((run_dir / "removed").rglob("*.jsonl")):
        docs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        found[path.relative_to(run_dir).as_posix()] = [
            (d["text"], d.get("metadata", {}).get("filter_reason", "")) for d in docs]
    return found


def report_counts(run_dir: Path) -> list[list[str]]:
    lines = (run_dir / "curation_report.md").read_text(encoding="utf-8").splitlines()
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines
            if line.startswith("| ") and not line.startswith("| step ")]
    return [[c for i, c in enumerate(row) if i not in TIME_COLUMNS] for row in rows]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args()
    result, same = {}, True
    for name, read in (("output", output_rows), ("removed", removed_docs),
                       ("report_counts", report_counts)):
        a, b = read(args.before), read(args.after)
        result[name] = "same" if a == b else "DIFFERENT"
        same &= a == b
    rows = output_rows(args.after)
    result["output_documents"] = sum(len(r) for r in rows.values())
    result["removed_documents"] = sum(len(d) for d in removed_docs(args.after).values())
    print(json.dumps({"before": str(args.before), "after": str(args.after), **result}))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
