"""Pretraining data curation on datatrove: raw web pages (WARC), JSONL, Parquet or text in,
clean sharded Parquet with a `text` column out.

    llm-jax data prepare experiments/curate_tiny.py [--dry-run] [--backend local|slurm|ray]

`plan.py` turns a curation config into datatrove stages (`stages.py`) and the stages into
local, SLURM or Ray executors; `readers.py` and `steps.py` hold the few steps datatrove lacks;
`counting.py` counts documents and characters through every step; `run.py` runs a plan
(`warm.py`: what the workers would each load, loaded once before they fork) and `report.py`
writes `curation_report.md`; `demo_warc.py` builds the demo crawl from Debian's HTML
documentation.
"""
