"""Pretraining data curation on datatrove: raw web pages (WARC), JSONL, Parquet or text in,
clean sharded Parquet with a `text` column out.

    llm-jax data prepare experiments/curate_tiny.py [--dry-run] [--backend local|slurm|ray]

`plan.py` turns a curation config into datatrove stages (local, SLURM or Ray executors from
the same stages), `steps.py` / `readers.py` hold the few steps datatrove lacks, `counting.py`
counts documents and characters through every step, and `report.py` writes
`curation_report.md` with its bar chart and removed examples.
"""
