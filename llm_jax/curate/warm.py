"""Pay a curation run's one-off costs once, in the process that forks the workers.

    check_dependencies_in_one_pass()   # before datatrove's steps are built
    cache_logger_library_dirs()        # before the executors set up their task logs
    warm_up(steps)                     # before the local executor forks its workers

Datatrove's local executor forks a pool of workers for every stage, and each worker imports
lazily what its steps need (pyarrow and pandas, for a Parquet reader or writer) or loads it
(py3langid's model, ~0.4 s). A forked worker inherits what its parent already holds, so
loading these once in the parent spares every worker of every stage (seven stages) the same
work. Nothing a step computes changes: only where the module or model is loaded.

Two per-step and per-task costs of the libraries are cut the same way, with the same
answers. Datatrove checks each step's pip dependencies when the step is built by reading the
metadata of every installed distribution, once per dependency name (~45 ms each in a large
environment, ~0.45 s for the ten names of the default plan). `check_dependencies_in_one_pass`
gives its check the same answers from one reading; `cache_logger_library_dirs` does the
same for the task logs' set-up.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import time

log = logging.getLogger(__name__)


@functools.cache
def _installed_distribution_names() -> frozenset[str]:
    names = set()
    for dist in importlib.metadata.distributions():
        metadata = getattr(dist, "metadata", None)
        name = metadata.get("Name") if metadata is not None else None
        if name:
            names.add(name.lower())
    return frozenset(names)


def distribution_available(distribution_name: str) -> bool | None:
    """Datatrove's `_is_distribution_available`, answered from one pass over the installed
    distributions: True when one is named `distribution_name` (lower case), else None."""
    return True if distribution_name in _installed_distribution_names() else None


def check_dependencies_in_one_pass() -> None:
    """Point datatrove's per-name dependency check at `distribution_available`."""
    from datatrove.utils import _import_utils

    if hasattr(_import_utils, "_is_distribution_available"):  # absent: nothing to speed up
        _import_utils._is_distribution_available = distribution_available


def cache_logger_library_dirs() -> None:
    """Compute loguru's standard-library folders once per process instead of once per sink.

    Datatrove adds two loguru sinks for every task (its log file and stderr), and loguru
    works out, for each sink, which folders hold the standard library: 32 `sysconfig`
    look-ups, ~6 ms. They do not change while the process runs, so a stage of 14 one-off
    tasks in this process spends ~0.03 s instead of ~0.18 s on its logs.
    """
    try:
        from loguru._better_exceptions import ExceptionFormatter
    except ImportError:  # another loguru: nothing to speed up
        return
    compute = getattr(ExceptionFormatter, "_get_lib_dirs", None)
    if compute is None or getattr(compute, "computed_once", False):
        return
    dirs = tuple(compute())

    def library_dirs() -> list[str]:
        return list(dirs)

    library_dirs.computed_once = True
    ExceptionFormatter._get_lib_dirs = staticmethod(library_dirs)


def warm_up(steps) -> list[str]:
    """Import or load, in this process, what `steps` (datatrove steps, `Counted` or bare)
    would otherwise load lazily in every worker; returns what was loaded."""
    from datatrove.pipeline.readers import ParquetReader
    from datatrove.pipeline.writers import ParquetWriter

    from llm_jax.curate.counting import Counted
    from llm_jax.curate.steps import LangIdFilter, LocatedTrafilatura, Resiliparse

    kinds = {type(s.step if isinstance(s, Counted) else s) for s in steps}
    done, start = [], time.perf_counter()
    if any(issubclass(k, (ParquetReader, ParquetWriter)) for k in kinds):
        import pyarrow.parquet  # noqa: F401

        done.append("pyarrow")
        try:  # pyarrow imports pandas when it builds a record batch, if pandas is installed
            import pandas  # noqa: F401

            done.append("pandas")
        except ImportError:
            pass
    if any(issubclass(k, Resiliparse) for k in kinds):
        import resiliparse.extract.html2text  # noqa: F401
        import resiliparse.parse.html  # noqa: F401

        done.append("resiliparse")
    if any(issubclass(k, LocatedTrafilatura) for k in kinds):
        import trafilatura  # noqa: F401

        done.append("trafilatura")
    if any(issubclass(k, LangIdFilter) for k in kinds):
        from llm_jax.curate.language_model import language_identifier

        language_identifier()
        done.append("py3langid model")
    log.info("loaded %s once for every worker (%.2f s)", ", ".join(done) or "nothing",
             time.perf_counter() - start)
    return done
