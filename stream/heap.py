"""The worker's garbage collector: fewer and shorter pauses, each one measured.

CPython's cyclic collector pauses the whole worker (event loop and ranking thread alike).
With its default young-generation threshold (700 container allocations) a busy worker
collected its young generation ~75 times a second, every tenth time the middle one too, and
every tenth of those (once enough objects had survived) everything: a full collection walks
every object the worker holds, the encoder's and Faust's modules, the index metadata, the
replica's association records. Over one answering worker's life in a pipeline run at 1,000
events/s (start-up included) that made 4,519 young, 410 middle and 19 full collections,
6.3 s in all, the full ones ~250 ms each, and those pauses are what the p99 latency saw
(docs/benchmarks/pipeline.md, seventh set).

So a worker (1) raises the young threshold to ``YOUNG_THRESHOLD``: most objects of a batch
die by reference counting before a collection looks at them, so total collection time falls
as the threshold rises (5,000: 0.9 s of young collections in a 45 s run; 20,000: 0.5 s;
50,000: 0.2 s), while one young pause grows (3, 12, 25 ms); and (2) just before it reports
ready, collects once and *freezes* what it has loaded (``gc.freeze``), so later full collections
walk only what changed since. Every pause is observed in ``xsell_gc_pause_seconds``.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from stream.metrics import Metrics

__all__ = ["YOUNG_THRESHOLD", "settle", "tune", "watch_pauses"]

YOUNG_THRESHOLD = 20_000


def tune() -> None:
    """Raise the young generation's threshold; the older generations keep theirs."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


def settle() -> None:
    """Once the worker has loaded what it keeps for life: collect, then exclude it all from later collections."""
    gc.collect()
    gc.freeze()


def watch_pauses(metrics: Metrics) -> None:
    """Observe every collection's wall time in ``metrics.gc_pause_seconds``, by generation."""
    started = [0.0]
    observers = {generation: metrics.gc_pause_seconds.labels(generation=str(generation)) for generation in range(3)}

    def on_collection(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            observers[info["generation"]].observe(time.perf_counter() - started[0])

    gc.callbacks.append(on_collection)
