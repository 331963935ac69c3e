"""A local run's one-off costs paid once (warm.py, run.py), with the same data coming out."""

import importlib.util
import json
import logging
import pickle

import pyarrow.parquet as pq
import pytest
from datatrove.data import Document
from datatrove.utils import _import_utils

from configs import curation
from llm_jax.curate.language_model import language_identifier
from llm_jax.curate.plan import plan_curation
from llm_jax.curate.run import run_curation
from llm_jax.curate.steps import LangIdFilter
from llm_jax.curate.warm import (
    cache_logger_library_dirs,
    check_dependencies_in_one_pass,
    distribution_available,
    warm_up,
)
from llm_jax.errors import ConfigError
from tests.curate.conftest import GERMAN, PII_LINE, config_for, paragraphs


def datatrove_check():
    """datatrove's own `_is_distribution_available`, from a fresh copy of its module (the
    one imported may already point at ours)."""
    spec = importlib.util.spec_from_file_location("datatrove.utils.fresh_import_utils",
                                                  _import_utils.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._is_distribution_available


def test_one_pass_dependency_check_answers_as_datatrove():
    original = datatrove_check()
    for name in ("pyarrow", "warcio", "python-magic", "faust-cchardet", "tldextract",
                 "PyArrow", "no-such-distribution-xyz"):
        assert distribution_available(name) == original(name), name
    check_dependencies_in_one_pass()
    # a missing distribution still stops a step from being built, with datatrove's message
    with pytest.raises(ImportError, match="pip install no-such-distribution-xyz"):
        _import_utils.check_required_dependencies("Step", [("os", "no-such-distribution-xyz")])


def test_logger_library_dirs_computed_once_with_the_same_answer(monkeypatch):
    from loguru._better_exceptions import ExceptionFormatter

    spec = importlib.util.spec_from_file_location("loguru.fresh_better_exceptions",
                                                  importlib.util.find_spec(
                                                      "loguru._better_exceptions").origin)
    fresh = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fresh)
    cache_logger_library_dirs()
    cache_logger_library_dirs()  # a second call keeps the first answer
    assert ExceptionFormatter._get_lib_dirs() == fresh.ExceptionFormatter._get_lib_dirs()
    assert ExceptionFormatter._get_lib_dirs()  # the venv's and Python's own folders

    def no_lookups(*args, **kwargs):
        raise AssertionError("sysconfig looked up again")

    monkeypatch.setattr("sysconfig.get_path", no_lookups)
    ExceptionFormatter(colorize=False)  # what loguru builds for every sink: no look-up now


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
