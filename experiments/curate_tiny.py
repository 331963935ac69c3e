"""Curate real web pages into pretraining Parquet on a laptop: Debian's Python documentation
(HTML, fetched with apt) as a crawl, with duplicates, German and French pages, a blocked
domain, e-mail addresses, phone numbers and broken records injected.

    llm-jax data prepare experiments/curate_tiny.py                  # ~2 cores, trafilatura
    llm-jax data prepare experiments/curate_tiny.py:resiliparse      # the faster extractor
    llm-jax data prepare experiments/curate_tiny.py --dry-run --backend slurm
    llm-jax train experiments/pretrain_tiny.py --config.data.generated.arithmetic=0 \\
        --config.data.train_paths='("runs/curate_tiny/default/data",)' --config.train.steps=20

Your own crawl: --config.input.paths='("/data/cc/",)' --config.input.glob='*.warc.gz'.
"""

from configs import curation
from llm_jax.config import choose


def get_config(arg=None):
    extractor = choose(arg, {"default": "trafilatura", "resiliparse": "resiliparse"},
                       "curate_tiny extractor")
    config = curation.curation_config()
    config.extract.extractor = extractor
    config.url_filter.block_domains = ("ads.example.com",)
    config.executor.tasks = 2  # the demo WARC comes in two shards
    config.executor.workers = 2
    config.extract.timeout_s = 10.0  # a busy shared machine must not turn into dropped pages
    # Sphinx pages are short lines and code: FineWeb's line rules and Gopher's share of
    # words with a letter (0.8) would drop most of them.
    config.fineweb.short_line_thr = 0.9
    config.fineweb.line_punct_thr = 0.0
    config.gopher_quality.max_non_alpha_words_ratio = 0.6
    return config
