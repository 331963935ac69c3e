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

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The offline corpora folder (Austen, KJV); tests that need it skip cleanly without it."""
    if not (SHARED_DATA / "austen").is_dir():
        pytest.skip(f"shared corpora not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def austen_text(shared_data) -> str:
    """A few hundred KB of real English prose."""
    return (shared_data / "austen" / "northanger_abbey.txt").read_text(encoding="utf-8")


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
    argv = ["train", str(root / "experiments/pretrain_tiny.py"), "--workdir", str(run_dir),
            *TINY_RUN_ARGS, *corpus_args(corpus), "--config.train.steps=4",
            "--config.train.sample_every=0"]
    assert main(argv) == 0
    return run_dir
