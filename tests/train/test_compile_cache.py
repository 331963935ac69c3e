"""The persistent compilation cache: a second run loads every program the first compiled,
and trains to the same bits."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax

from llm_jax.train.compile_cache import cache_folder, use_compilation_cache
from tests.helpers import TINY_RUN_ARGS, corpus_args

ROOT = Path(__file__).resolve().parents[2]


def _losses(run_dir: Path) -> list[float]:
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if "loss" in r]


def test_second_run_loads_every_program_and_trains_the_same(corpus, tmp_path):
    cache = tmp_path / "cache"

    def train(name: str) -> Path:
        run_dir = tmp_path / name
        subprocess.run([sys.executable, "-m", "llm_jax.cli", "train",
                        str(ROOT / "experiments/pretrain_tiny.py"), "--workdir", str(run_dir),
                        *TINY_RUN_ARGS, *corpus_args(corpus), "--config.train.steps=3",
                        "--config.train.eval_every=0", "--config.train.sample_every=0",
                        f"--config.run.compilation_cache={cache}"],
                       cwd=ROOT, check=True, capture_output=True, timeout=600,
                       # every program cached: on a loaded machine a compile time can cross
                       # the 1 s threshold in one run and not the other
                       env={**os.environ, "LLM_JAX_CACHE_MIN_COMPILE_SECONDS": "0"})
        return run_dir

    first = train("first")
    folder = next(cache.iterdir())
    assert folder.name.startswith(f"jax{jax.__version__}-cpu-")
    entries = sorted(p.name for p in folder.iterdir())
    assert entries, "nothing was cached"
    second = train("second")
    assert sorted(p.name for p in folder.iterdir()) == entries  # all loaded, none compiled
    assert _losses(second) == _losses(first) and len(_losses(first)) == 3


def test_cache_is_keyed_by_machine_and_off_when_it_cannot_be_made(tmp_path):
    assert cache_folder(tmp_path).parent == tmp_path
    assert jax.__version__ in cache_folder(tmp_path).name
    assert use_compilation_cache("") is None
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert use_compilation_cache(str(blocker / "cache")) is None  # a warning, not a crash
