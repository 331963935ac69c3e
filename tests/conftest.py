"""Test setup: 8 virtual CPU devices, fp32 matmuls, offline W&B, and shared fixtures.

The environment must be set before JAX is imported anywhere, so it happens at the top of the
first module pytest loads.
"""

import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()
os.environ["JAX_PLATFORMS"] = "cpu"
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
# No persistent compilation cache: a test's outcome must not depend on what ran before it
# (tests/train/test_compile_cache.py turns it on for itself).
os.environ.setdefault("LLM_JAX_COMPILATION_CACHE", "")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

# The suite's own corpus: excerpts of public-domain texts (Austen, the King James Bible) as the
# project's Debian fetch gives them, so the tests need nothing beside the repository.
TEST_CORPUS = Path(__file__).resolve().parent / "corpus"


@pytest.fixture(scope="session")
def test_corpus() -> Path:
    """The folder of real prose the tests carry (see corpus/)."""
    return TEST_CORPUS


@pytest.fixture(scope="session")
def austen_text(test_corpus) -> str:
    """A few hundred KB of real English prose."""
    return (test_corpus / "northanger_abbey.txt").read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def corpus(tmp_path_factory, austen_text) -> dict[str, str]:
    """A small train folder and validation file of real prose."""
    root = tmp_path_factory.mktemp("corpus")
    (root / "train").mkdir()
    for i in range(4):
        (root / "train" / f"part{i}.txt").write_text(austen_text[i * 30_000:(i + 1) * 30_000])
    (root / "val.txt").write_text(austen_text[200_000:215_000])
    return {"train": str(root / "train"), "val": str(root / "val.txt")}


@pytest.fixture(scope="session")
def tiny_pretrained_run(tmp_path_factory, corpus) -> Path:
    """One 4-step `pretrain_tiny` run (GPT-2 flavour, d=64) that later stages start from."""
    from llm_jax.cli import main
    from tests.helpers import TINY_RUN_ARGS, corpus_args

    run_dir = tmp_path_factory.mktemp("pretrained") / "run"
    root = Path(__file__).resolve().parents[1]
    argv = ["train", str(root / "experiments/pretrain_tiny.py:gpt2"), "--workdir", str(run_dir),
            *TINY_RUN_ARGS, *corpus_args(corpus), "--config.train.steps=4",
            "--config.train.sample_every=0"]
    assert main(argv) == 0
    return run_dir


def pytest_sessionfinish(session, exitstatus):
    """Under CI a skipped test is a failure: the suite must run whole from a fresh clone."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if not os.environ.get("CI") or reporter is None:
        return
    skipped = reporter.stats.get("skipped", [])
    if skipped and session.exitstatus == 0:
        reporter.write_line(f"CI: {len(skipped)} test(s) skipped; under CI a skip is a failure",
                            red=True)
        session.exitstatus = 1
