"""`llm-jax data prepare`: one-line errors, and the dry run of every backend."""

from pathlib import Path

import pytest

from llm_jax.cli import main

EXPERIMENT = str(Path(__file__).resolve().parents[2] / "experiments" / "curate_tiny.py")


def run(argv, capsys) -> tuple[int, str, str]:
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_missing_input_is_one_line_naming_it(tmp_path, capsys):
    missing = tmp_path / "no_such_crawl"
    code, out, err = run(["data", "prepare", EXPERIMENT, "--workdir", str(tmp_path / "run"),
                          f"--config.input.paths=('{missing}',)"], capsys)
    assert code == 1
    assert err.strip().count("\n") == 0 and str(missing) in err and "input.paths" in err
    assert "Traceback" not in err and not (tmp_path / "run").exists()


@pytest.mark.parametrize("override, needle", [
    ("--config.input.format=html", "input.format='html'"),
    ("--config.extract.extractor=lxml", "extract.extractor='lxml'"),
    ("--config.minhash.n_gram=5", "did you mean 'minhash.n_grams'"),
    ("--config.word_splitter=nltk", "word_splitter='nltk': one of fast, spacy"),
    ("--config.executor.start_method=thread", "executor.start_method='thread'"),
    ("--config.language.max_chars=-1", "language.max_chars=-1"),
])
def test_config_mistakes_are_one_line(tmp_path, capsys, override, needle):
    code, _, err = run(["data", "prepare", EXPERIMENT, f"--config.input.paths=('{tmp_path}',)",
                        override], capsys)
    assert code == 2 and needle in err and err.strip().count("\n") == 0


def test_train_on_a_curation_experiment_says_what_to_run(capsys):
    code, _, err = run(["train", EXPERIMENT], capsys)
    assert code == 2 and "llm-jax data prepare" in err


@pytest.fixture
def crawl(tmp_path) -> Path:
    folder = tmp_path / "crawl"
    folder.mkdir()
    (folder / "part-0.warc.gz").write_bytes(b"")
    return folder


def dry_run(backend: str, crawl: Path, tmp_path: Path, capsys) -> str:
    code, out, _ = run(["data", "prepare", EXPERIMENT, "--dry-run", "--backend", backend,
                        "--workdir", str(tmp_path / "run"), f"--config.input.paths=('{crawl}',)",
                        "--config.executor.tasks=4"], capsys)
    assert code == 0
    return out


def test_dry_run_local_lists_stages_inputs_outputs(crawl, tmp_path, capsys):
    out = dry_run("local", crawl, tmp_path, capsys)
    assert f"inputs: {crawl}" in out and f"output: {tmp_path / 'run' / 'data'}" in out
    assert "executor: local" in out
    assert ("1. filter (4 tasks): read → url_filter → extract → language → gopher_repetition → "
            "gopher_quality → c4 → fineweb → write Parquet") in out
    assert "5. minhash_buckets (14 tasks)" in out and "6. minhash_clusters (1 task)" in out
    assert "7. final (4 tasks): read Parquet" in out and "exact_dedup → minhash_dedup → pii" in out
    assert not (tmp_path / "run" / "data").exists()


def test_dry_run_slurm_shows_the_job_scripts(crawl, tmp_path, capsys):
    out = dry_run("slurm", crawl, tmp_path, capsys)
    assert out.count("#!/bin/bash") == 7 and out.count("launch_pickled_pipeline") == 7
    assert "--- job run-filter: 4 array tasks ---" in out
    assert "#SBATCH --array=0-3" in out and "#SBATCH --partition=cpu" in out
    assert "#SBATCH --array=0-13" in out  # minhash buckets
    assert not (tmp_path / "run" / "logs" / "filter" / "executor.pik").exists()  # not submitted


def test_dry_run_ray_without_ray(crawl, tmp_path, capsys):
    import sys

    out = dry_run("ray", crawl, tmp_path, capsys)
    assert "Ray tasks (not launched" in out
    assert "filter: 4 tasks × 1 CPU, 2.0 GB/CPU" in out and "minhash_buckets: 14 tasks" in out
    assert "ray" not in sys.modules  # planned without importing ray


def test_slurm_without_sbatch_is_one_line(crawl, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch anywhere
    code, _, err = run(["data", "prepare", EXPERIMENT, "--backend", "slurm",
                        f"--config.input.paths=('{crawl}',)"], capsys)
    assert code == 1 and "sbatch" in err and err.strip().count("\n") == 0
