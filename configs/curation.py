"""The config of a data-curation experiment (`llm-jax data prepare`); experiments fill it in.

Every step has its own section with `enabled`; the defaults follow FineWeb's recipe (URL block
list, trafilatura, English, Gopher / C4 / FineWeb quality rules, MinHash 5-grams in 14
buckets of 8 hashes, e-mail and IP scrubbing) with phone numbers scrubbed as well.
"""

import ml_collections


def curation_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.stage = "curate"  # read by `llm-jax data prepare`, never by a trainer
    c.run = ml_collections.ConfigDict(dict(
        name="",  # directory name under runs/<experiment>/; default: the experiment arg
    ))
    c.input = ml_collections.ConfigDict(dict(
        paths=(),  # files or folders; empty = the demo WARC built from `demo` below
        format="warc",  # warc | jsonl | parquet | text
        glob="",  # inside folders, e.g. "*.warc.gz"; "" = every file
        text_field="text",  # JSONL key / Parquet column
        limit=-1,  # documents per task, -1 = all (for quick looks)
    ))
    # The demo input: HTML pages of a Debian documentation package, fetched with apt and
    # written into a WARC with injected duplicates, foreign pages, e-mails and bad records
    # (llm_jax/curate/demo_warc.py).
    c.demo = ml_collections.ConfigDict(dict(
        package="python3-doc",
        pages=400,  # distinct pages taken from the package
        seed=0,
        shards=2,  # WARC files, so that executor.tasks=2 keeps two cores busy
    ))
    c.url_filter = ml_collections.ConfigDict(dict(
        enabled=True,
        block_domains=(),  # e.g. ("spam.example",): the domain and all its subdomains
        block_urls=(),  # exact URLs
        banned_words=(),  # a URL containing any of these words is dropped
    ))
    c.extract = ml_collections.ConfigDict(dict(
        enabled=True,  # WARC input only: JSONL/Parquet/text are already text
        extractor="trafilatura",  # trafilatura (datatrove's, FineWeb's) | resiliparse (faster)
        timeout_s=1.0,  # per page (trafilatura runs in a sandbox process)
    ))
    c.language = ml_collections.ConfigDict(dict(
        enabled=True,
        languages=("en",),  # ISO 639-1 codes py3langid knows
        threshold=0.65,  # FineWeb's: keep when P(language) >= threshold
        # classify the first this many characters (0 = all): 5x faster on the demo pages,
        # every decision the same as on whole pages (bench/curate_steps.py --language)
        max_chars=5000,
    ))
    # How the Gopher / C4 / FineWeb filters and MinHash split English words and sentences:
    # "fast" (regular expressions, llm_jax/curate/words.py, ~2 ms a long page) or "spacy"
    # (datatrove's default, ~35 ms); the filters keep or drop the same pages (see the README).
    c.word_splitter = "fast"
    c.gopher_repetition = ml_collections.ConfigDict(dict(
        enabled=True,
        # datatrove's rules and thresholds, its n-grams hashed at once with numpy
        # (llm_jax/curate/repetition.py): the same decisions; False = datatrove's
        # GopherRepetitionFilter
        fast=True,
    ))
    c.gopher_quality = ml_collections.ConfigDict(dict(
        enabled=True,
        # datatrove's rules, its per-character loops in C (llm_jax/curate/gopher_quality.py):
        # the same decisions; False = datatrove's GopherQualityFilter
        fast=True,
        min_doc_words=50,
        max_doc_words=100_000,
        min_stop_words=2,
        max_symbol_word_ratio=0.1,
        max_non_alpha_words_ratio=0.8,
    ))
    c.c4 = ml_collections.ConfigDict(dict(
        enabled=True,
        filter_no_terminal_punct=False,  # FineWeb keeps lines without terminal punctuation
        min_num_sentences=5,
        filter_curly_bracket=True,
    ))
    c.fineweb = ml_collections.ConfigDict(dict(
        enabled=True,
        line_punct_thr=0.12,
        short_line_thr=0.67,
        char_duplicates_ratio=0.01,
        new_line_ratio=0.3,
    ))
    c.exact_dedup = ml_collections.ConfigDict(dict(enabled=True))
    c.minhash = ml_collections.ConfigDict(dict(
        enabled=True,
        n_grams=5,
        num_buckets=14,
        hashes_per_bucket=8,  # pairs above ~0.72 Jaccard similarity are likely caught
        seed=1,
    ))
    c.pii = ml_collections.ConfigDict(dict(enabled=True, emails=True, ips=True, phones=True))
    c.output = ml_collections.ConfigDict(dict(
        dir="",  # "" = <run dir>/data
        max_file_mb=256,  # a new Parquet shard every this many MB
    ))
    c.executor = ml_collections.ConfigDict(dict(
        tasks=1,  # shards of the input, processed independently (files are split among them)
        workers=1,  # local: tasks at once (1 = in this process)
        # local, workers > 1: how the worker processes start; "fork" inherits the modules
        # already imported, where datatrove's default "forkserver" imports them again in
        # every worker of every stage (~1.5 s a stage); "spawn" starts from scratch (and
        # suits a parent process that runs threads, which fork does not)
        start_method="fork",
        # local, forked workers: load py3langid's model, pyarrow/pandas and the extractor in
        # the parent once, so that no worker of any stage loads them again (the model ~0.4 s,
        # pandas ~0.35 s, in each worker of each stage that uses them)
        preload=True,
        # local: a stage after `filter` whose input (Parquet, signatures) is smaller than
        # this runs its tasks in this process, without starting worker processes; 0 = never
        in_process_below_mb=1.0,
        slurm=ml_collections.ConfigDict(dict(
            partition="cpu", time="12:00:00", cpus_per_task=1, mem_per_cpu_gb=2,
            venv_path="",  # activated by each job, e.g. /path/to/.venv/bin/activate
            sbatch_args=(),  # extra "#SBATCH" key=value pairs, e.g. ("account=abc",)
        )),
        ray=ml_collections.ConfigDict(dict(cpus_per_task=1, mem_per_cpu_gb=2.0)),
    ))
    c.report = ml_collections.ConfigDict(dict(
        examples_per_filter=3,
        example_chars=400,  # each removed example is cut to this many characters
    ))
    c.wandb = ml_collections.ConfigDict(dict(
        project="llm-jax-data", mode="auto", group="", entity="", tags=(),
    ))
    return c
