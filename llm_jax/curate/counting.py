"""Count documents and characters into and out of every step, and the step's own time.

    Counted(step, "gopher_quality")    # a datatrove step that behaves exactly as `step`

The counts are datatrove stats of the wrapped step (`docs_in`, `chars_in`, `docs_out`,
`chars_out`, `wall_ms`), so every executor saves them with the step's own stats in
`<logs>/<stage>/stats/<rank>.json`, on one machine or a cluster alike. `wall_ms` is the time
spent inside this step only (upstream steps' time subtracted), which tells which step
dominates a run.
"""

from __future__ import annotations

import time

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

COUNTS = ("docs_in", "chars_in", "docs_out", "chars_out", "wall_ms")


class Counted(PipelineStep):
    """`step`, with its documents and characters counted on the way in and out."""

    def __init__(self, step: PipelineStep, label: str):
        super().__init__()
        self.step = step
        self.label = label
        self.name, self.type = label, step.type
        step.stats.name = label
        self.stats = step.stats  # one stats record: the step's own counters and ours
        self._upstream_s = 0.0

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1):
        outputs = iter(self.step.run(self._count_in(data) if data is not None else None,
                                     rank, world_size))
        own_s = 0.0
        try:
            while True:
                start, upstream = time.perf_counter(), self._upstream_s
                try:
                    doc = next(outputs)
                except StopIteration:
                    return
                finally:
                    own_s += time.perf_counter() - start - (self._upstream_s - upstream)
                self.stat_update("docs_out")
                self.stat_update("chars_out", value=len(doc.text))
                yield doc
        finally:
            self.stat_update("wall_ms", value=round(own_s * 1000), unit="task")
            for name in COUNTS:  # a step that saw nothing still reports zeros
                if name not in self.stats.stats:
                    self.stats[name].update(0)

    def _count_in(self, data: DocumentsPipeline) -> DocumentsPipeline:
        docs = iter(data)
        while True:
            start = time.perf_counter()
            try:
                doc = next(docs)
            except StopIteration:
                return
            finally:
                self._upstream_s += time.perf_counter() - start
            self.stat_update("docs_in")
            self.stat_update("chars_in", value=len(doc.text))
            yield doc
