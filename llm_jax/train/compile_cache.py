"""JAX's persistent compilation cache, shared by every run on a machine (`run.compilation_cache`).

The default lives under ~/.cache (or `LLM_JAX_COMPILATION_CACHE`), keyed by jax version,
platform and CPU model, since executables use that CPU's instruction set."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import jax
from jax.experimental.compilation_cache import compilation_cache

from llm_jax.tracking.report import cpu_model

log = logging.getLogger(__name__)

DEFAULT = os.environ.get("LLM_JAX_COMPILATION_CACHE", "~/.cache/llm-jax/jax-compilation")
# Programs that compile faster than this are not worth a file read and write.
MIN_COMPILE_SECONDS = float(os.environ.get("LLM_JAX_CACHE_MIN_COMPILE_SECONDS", "1.0"))


def cache_folder(root: str | Path) -> Path:
    """`root` / one folder per (jax version, platform, CPU model)."""
    machine = hashlib.sha256(cpu_model().encode()).hexdigest()[:12]
    return Path(root).expanduser() / f"jax{jax.__version__}-{jax.default_backend()}-{machine}"


def use_compilation_cache(root: str) -> Path | None:
    """Point JAX's persistent cache at `root`'s folder for this machine (None when off)."""
    if not root:
        return None
    folder = cache_folder(root)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # a read-only home must not stop a run: it only compiles more
        log.warning("compilation cache off: cannot create %s (%s)", folder, error.strerror)
        return None
    if jax.config.jax_compilation_cache_dir != str(folder):
        # The cache object is built at the first compilation and keeps its folder after that.
        compilation_cache.reset_cache()
        jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    return folder
