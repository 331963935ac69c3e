"""A local run's one-off costs paid once (warm.py, run.py), with the same data coming out."""

import json
import logging
import pickle

import pyarrow.parquet as pq
import pytest
from datatrove.data import Document

from configs import curation
from llm_jax.curate.language_model import language_identifier
from llm_jax.curate.plan import plan_curation
from llm_jax.curate.run import run_curation
from llm_jax.curate.steps import LangIdFilter
from llm_jax.curate.warm import warm_up
from llm_jax.errors import ConfigError
from tests.curate.conftest import GERMAN, PII_LINE, config_for, paragraphs


def steps_of(config, tmp_path) -> list:
    plan = plan_curation(config, tmp_path / "run", (str(tmp_path / "in"),), must_exist=False)
    return [step for stage in plan.stages for step in stage.pipeline]


def test_warm_up_loads_what_the_plan_steps_load_lazily(tmp_path):
    config = curation.curation_config()
    config.extract.extractor = "resiliparse"
    language_identifier.cache_clear()
    assert warm_up(steps_of(config, tmp_path)) == ["pyarrow", "pandas", "resiliparse",
                                                   "py3langid model"]
    assert language_identifier.cache_info().currsize == 1  # loaded, and kept for the workers
    config.extract.extractor = "trafilatura"
    config.language.enabled = False
    assert warm_up(steps_of(config, tmp_path)) == ["pyarrow", "pandas", "trafilatura"]


def test_language_filter_uses_the_shared_model_and_pickles_without_it():
    step = LangIdFilter(("en",), 0.65, max_chars=5000)
    english = Document(text=paragraphs(1)[0], id="en")
    german = Document(text=GERMAN, id="de")
    assert step.filter(english) is True and english.metadata["language"] == "en"
    assert step.filter(german) == (False, "language_de")
    assert language_identifier().classify(GERMAN)[0] == "de"
    # the executor pickles the step for every task: the 68 MB model must not travel with it
    assert len(pickle.dumps(step)) < 20_000


def curate_two_shards(tmp_path, name: str, **executor) -> tuple:
    """Two JSONL shards (duplicates across them, German, PII) curated by 2 tasks."""
    docs = paragraphs(8)
    shards = [[*docs[:4], docs[4] + "\n" + PII_LINE, GERMAN + "\n" + GERMAN],
              [*docs[5:], docs[0], docs[1]]]  # two exact duplicates of shard 0
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    for i, shard in enumerate(shards):
        (folder / f"part-{i}.jsonl").write_text("".join(
            json.dumps({"id": f"{i}-{j}", "text": t, "url": f"https://ex.example/{i}/{j}"})
            + "\n" for j, t in enumerate(shard)))
    config = config_for(folder)
    config.executor.tasks = config.executor.workers = 2
    config.executor.update(executor)
    result = run_curation(config, tmp_path / name)
    rows = [pq.read_table(p).to_pylist() for p in sorted(result.plan.output_dir.glob("*"))]
    counts = [(r.label, r.docs_in, r.docs_out, r.chars_in, r.chars_out, r.reasons)
              for r in result.rows]
    return rows, counts


def test_small_stages_in_process_and_preloading_keep_the_data(tmp_path, caplog):
    pools, pool_counts = curate_two_shards(tmp_path, "pools", preload=False,
                                           in_process_below_mb=0.0)
    with caplog.at_level(logging.INFO, logger="llm_jax.curate.run"):
        fast, fast_counts = curate_two_shards(tmp_path, "fast")
    ran_here = {r.getMessage().split(":")[0] for r in caplog.records
                if "tasks run in this process" in r.getMessage()}
    assert ran_here == {"exact_signatures", "minhash_signatures", "minhash_buckets", "final"}
    assert fast == pools and fast_counts == pool_counts
    removed = {label: docs_in - docs_out for label, docs_in, docs_out, *_ in fast_counts}
    assert removed["language"] == 1 and removed["exact_dedup"] == 2  # German; the 2 copies
    assert sum(len(r) for r in fast) == fast_counts[-1][2] > 0


def test_negative_in_process_size_is_a_config_error(tmp_path):
    config = curation.curation_config()
    config.executor.in_process_below_mb = -1.0
    with pytest.raises(ConfigError, match="executor.in_process_below_mb"):
        plan_curation(config, tmp_path, (str(tmp_path),), must_exist=False)
