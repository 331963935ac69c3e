"""The default corpus: Jane Austen's six novels and the King James Bible, from Debian packages.

Fetched once with `apt-get download` (no root), cached in `~/.cache/llm_jax/corpora` (or
`$LLM_JAX_CACHE/corpora`). *Persuasion* is held out for validation."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from llm_jax.data.errors import DataError
from llm_jax.data.rdata import read_lazyload

log = logging.getLogger(__name__)

AUSTEN_PACKAGE = "r-cran-janeaustenr"
BIBLE_PACKAGES = ("bible-kjv", "bible-kjv-text")
NOVELS = {  # R variable -> file name
    "emma": "emma", "mansfieldpark": "mansfield_park", "northangerabbey": "northanger_abbey",
    "persuasion": "persuasion", "prideprejudice": "pride_and_prejudice",
    "sensesensibility": "sense_and_sensibility",
}
VALIDATION = ("persuasion",)
HINT = ("pass your own text with --config.data.train_paths='(\"/path/to/*.txt\",)' "
        "(text, JSONL or Parquet)")


def cache_root() -> Path:
    base = os.environ.get("LLM_JAX_CACHE")
    return Path(base) if base else Path.home() / ".cache" / "llm_jax"


def _download(packages: tuple[str, ...], into: Path) -> None:
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise DataError(f"cannot fetch the default corpus: apt-get/dpkg-deb not found; {HINT}")
    run = subprocess.run(["apt-get", "download", *packages], cwd=into, capture_output=True,
                         text=True, timeout=300)
    if run.returncode != 0:
        detail = run.stderr.strip().splitlines()[-1:] or ["no output"]
        raise DataError(f"cannot fetch the default corpus (apt-get download {' '.join(packages)}"
                        f": {detail[0]}); {HINT}")
    for deb in into.glob("*.deb"):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(into / "root")], check=True)


def _write_austen(root: Path, out: Path) -> None:
    data = root / "usr/lib/R/site-library/janeaustenr/data"
    novels = read_lazyload(data / "Rdata.rdx", data / "Rdata.rdb")
    out.mkdir(parents=True, exist_ok=True)
    for var, name in NOVELS.items():
        lines = ["" if line is None else line for line in novels[var]]
        (out / f"{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _write_bible(root: Path, out: Path) -> None:
    run = subprocess.run([str(root / "usr/bin/bible"), "-p", str(root / "usr/lib"),
                          "gen1:1-rev22:21"], capture_output=True, text=True, timeout=300)
    if run.returncode != 0 or len(run.stdout) < 1_000_000:
        raise DataError(f"the bible program from {'/'.join(BIBLE_PACKAGES)} failed "
                        f"({run.stderr.strip()[:200]}); {HINT}")
    out.write_text(run.stdout, encoding="utf-8")


def default_corpus(cache_dir: str | Path | None = None) -> tuple[list[Path], list[Path]]:
    """(training files, validation files), fetching them on first use."""
    root = Path(cache_dir) if cache_dir else cache_root() / "corpora"
    austen, bible = root / "austen", root / "kjv.txt"
    if not (austen / "persuasion.txt").exists() or not bible.exists():
        log.info("fetching the default corpus (Jane Austen, King James Bible) into %s", root)
        with tempfile.TemporaryDirectory() as tmp:
            tmp_path = Path(tmp)
            _download((AUSTEN_PACKAGE, *BIBLE_PACKAGES), tmp_path)
            staging = Path(tempfile.mkdtemp(dir=root.parent if root.parent.exists() else None))
            _write_austen(tmp_path / "root", staging / "austen")
            _write_bible(tmp_path / "root", staging / "kjv.txt")
            root.mkdir(parents=True, exist_ok=True)
            for item in ("austen", "kjv.txt"):  # move into place only once complete
                if (root / item).exists():
                    shutil.rmtree(root / item) if (root / item).is_dir() else (root / item).unlink()
                shutil.move(str(staging / item), str(root / item))
            shutil.rmtree(staging, ignore_errors=True)
    val = [austen / f"{name}.txt" for name in VALIDATION]
    train = sorted(p for p in austen.glob("*.txt") if p not in val) + [bible]
    return train, val
