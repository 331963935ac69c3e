"""The datatrove steps of each curation stage, built from the config (see plan.py's order).

Only datatrove's own readers, filters, dedup stages and writers appear here, plus the few
steps of `readers.py` / `steps.py` that datatrove lacks. Every step whose documents the report
counts is wrapped in `Counted`; every filter writes what it removes to `removed/<step>/`.
"""

from pathlib import Path

import ml_collections
from datatrove.data import Document
from datatrove.pipeline.dedup import (
    ExactDedupConfig,
    ExactDedupFilter,
    ExactDedupSignature,
    ExactFindDedups,
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)
from datatrove.pipeline.readers import JsonlReader, ParquetReader
from datatrove.pipeline.writers import JsonlWriter, ParquetWriter

from llm_jax.curate.counting import Counted
from llm_jax.curate.gopher_quality import FastGopherQualityFilter
from llm_jax.curate.readers import LocatedWarcReader, TextReader
from llm_jax.curate.repetition import FastGopherRepetitionFilter
from llm_jax.curate.steps import (
    LangIdFilter,
    LocatedTrafilatura,
    OfflineURLFilter,
    PIIScrubber,
    Resiliparse,
)
from llm_jax.curate.words import word_splitter


# No `from __future__ import annotations` here: datatrove reads the content getter's return
# annotation at run time to choose how to hash it.
def document_text(doc: Document) -> bytes:
    """Exact dedup's content: the text's UTF-8 bytes (the default xxhash takes bytes; a
    module-level function so it pickles)."""
    return doc.text.encode("utf-8")


def text_row(self, doc: Document) -> dict:
    """The Parquet row written: `text` (what pretraining reads), plus id and source URL."""
    return {"text": doc.text, "id": str(doc.id), "url": str(doc.metadata.get("url") or "")}


def _reader(config, folder: str, glob: str | None, fmt: str):
    common = dict(data_folder=folder, glob_pattern=glob, limit=config.input.limit)
    if fmt == "warc":
        return LocatedWarcReader(**common)
    if fmt == "jsonl":
        return JsonlReader(text_key=config.input.text_field, **common)
    if fmt == "parquet":
        return ParquetReader(text_key=config.input.text_field, read_metadata=True, **common)
    return TextReader(**common)


def filter_steps(config: ml_collections.ConfigDict, removed: Path) -> list[tuple[str, object]]:
    """(label, step) for the enabled steps between the reader and the dedup stages."""

    def excluded(label: str) -> JsonlWriter:
        return JsonlWriter(str(removed / label), output_filename="${rank}.jsonl",
                           compression=None)

    steps = []
    if config.url_filter.enabled:
        u = config.url_filter
        steps.append(("url_filter", OfflineURLFilter(
            extra_domains=u.block_domains or None, extra_urls=u.block_urls or None,
            banned_words=u.banned_words or None, exclusion_writer=excluded("url_filter"))))
    if config.extract.enabled and config.input.format == "warc":
        extractor = (Resiliparse(timeout=config.extract.timeout_s)
                     if config.extract.extractor == "resiliparse"
                     else LocatedTrafilatura(timeout=config.extract.timeout_s))
        steps.append(("extract", extractor))
    if config.language.enabled:
        steps.append(("language", LangIdFilter(
            tuple(config.language.languages), config.language.threshold,
            config.language.max_chars, exclusion_writer=excluded("language"))))
    # Datatrove's quality filters, each built from its config section (every key but
    # `enabled` and `fast` is one of the filter's own arguments); `language` is how they split
    # words. `fast` picks datatrove's Gopher rules computed faster, with the same decisions
    # (repetition.py, gopher_quality.py).
    splitter = word_splitter(config)
    repetition = (FastGopherRepetitionFilter if config.gopher_repetition.fast
                  else GopherRepetitionFilter)
    quality = FastGopherQualityFilter if config.gopher_quality.fast else GopherQualityFilter
    for name, filter_type in (("gopher_repetition", repetition),
                              ("gopher_quality", quality),
                              ("c4", C4QualityFilter), ("fineweb", FineWebQualityFilter)):
        section = config[name]
        if section.enabled:
            settings = {k: v for k, v in section.items() if k not in ("enabled", "fast")}
            steps.append((name, filter_type(**settings, language=splitter,
                                            exclusion_writer=excluded(name))))
    return steps


def build_stages(config: ml_collections.ConfigDict, locations: list[tuple[str, str | None]],
                 run_dir: Path, output_dir: Path) -> list:
    from llm_jax.curate.plan import Stage

    tasks = config.executor.tasks
    work, removed = run_dir / "work", run_dir / "removed"
    filtered = work / "filtered"

    readers = [_reader(config, folder, glob, config.input.format) for folder, glob in locations]
    # A reader passes on what the readers before it yielded, then its own documents.
    first = readers[:-1] + [Counted(readers[-1], "read")]
    counted = [Counted(step, label) for label, step in filter_steps(config, removed)]
    stages = [Stage("filter", [*first, *counted, ParquetWriter(
        str(filtered), adapter=text_row, output_filename="${rank}.parquet")], tasks,
        ("read", *(c.label for c in counted)))]

    def filtered_reader():
        return ParquetReader(str(filtered), read_metadata=True)

    exact_cfg = ExactDedupConfig(content_getter=document_text)
    exact_before_minhash = []
    if config.exact_dedup.enabled:
        stages.append(Stage("exact_signatures", [
            filtered_reader(), ExactDedupSignature(str(work / "exact/signatures"), exact_cfg)],
            tasks, reads=filtered))
        stages.append(Stage("exact_duplicates", [ExactFindDedups(
            str(work / "exact/signatures"), str(work / "exact/duplicates"), exact_cfg)], 1,
            reads=work / "exact/signatures"))
        exact_before_minhash = [ExactDedupFilter(str(work / "exact/duplicates"), exact_cfg)]

    final = [filtered_reader()]
    if config.exact_dedup.enabled:
        final.append(Counted(ExactDedupFilter(
            str(work / "exact/duplicates"), exact_cfg,
            exclusion_writer=JsonlWriter(str(removed / "exact_dedup"),
                                         output_filename="${rank}.jsonl", compression=None)),
            "exact_dedup"))
    if config.minhash.enabled:
        m = config.minhash
        mh = MinhashConfig(n_grams=m.n_grams, num_buckets=m.num_buckets,
                           hashes_per_bucket=m.hashes_per_bucket, seed=m.seed)
        base = work / "minhash"
        stages.append(Stage("minhash_signatures", [
            filtered_reader(), *exact_before_minhash,
            MinhashDedupSignature(str(base / "signatures"), config=mh,
                                  language=word_splitter(config))], tasks, reads=filtered))
        stages.append(Stage("minhash_buckets", [MinhashDedupBuckets(
            str(base / "signatures"), str(base / "buckets"), config=mh)], m.num_buckets,
            reads=base / "signatures"))
        stages.append(Stage("minhash_clusters", [MinhashDedupCluster(
            str(base / "buckets"), str(base / "remove_ids"), config=mh)], 1,
            reads=base / "buckets"))
        final.append(Counted(MinhashDedupFilter(
            str(base / "remove_ids"),
            exclusion_writer=JsonlWriter(str(removed / "minhash_dedup"),
                                         output_filename="${rank}.jsonl", compression=None)),
            "minhash_dedup"))
    if config.pii.enabled:
        p = config.pii
        final.append(Counted(PIIScrubber(p.emails, p.ips, p.phones), "pii"))
    final.append(ParquetWriter(str(output_dir), adapter=text_row,
                               output_filename="${rank}.parquet",
                               max_file_size=config.output.max_file_mb * 2**20))
    stages.append(Stage("final", final, tasks,
                        tuple(s.label for s in final if isinstance(s, Counted)), filtered))
    return stages
