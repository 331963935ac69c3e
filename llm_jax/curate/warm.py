"""Pay a curation run's one-off costs once, in the process that forks the workers.

    warm_up(steps)                     # before the local executor forks its workers

Datatrove's local executor forks a pool of workers for every stage, and each worker imports
lazily what its steps need (pyarrow and pandas, for a Parquet reader or writer) or loads it
(py3langid's model, ~0.4 s). A forked worker inherits what its parent already holds, so
loading these once in the parent spares every worker of every stage (seven stages) the same
work. Nothing a step computes changes: only where the module or model is loaded.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)


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
