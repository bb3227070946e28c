"""``stream.heap``: the worker's collector settings, with the real ``gc`` (restored afterwards)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from stream import heap
from stream.metrics import Metrics


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    callbacks = list(gc.callbacks)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.callbacks[:] = callbacks
        gc.unfreeze()


def _count(metrics: Metrics, generation: str) -> float:
    value = metrics.registry.get_sample_value("xsell_gc_pause_seconds_count", {"generation": generation})
    return value or 0.0


def test_tune_raises_only_the_young_threshold(restored_gc: None) -> None:
    _, middle, old = gc.get_threshold()
    heap.tune()
    assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, middle, old)


def test_every_collection_is_observed_by_generation(restored_gc: None) -> None:
    metrics = Metrics()
    heap.watch_pauses(metrics)
    gc.collect(0)
    gc.collect(2)
    gc.collect(2)
    assert _count(metrics, "0") >= 1
    assert _count(metrics, "2") >= 2
    total = metrics.registry.get_sample_value("xsell_gc_pause_seconds_sum", {"generation": "2"})
    assert total is not None and total > 0


def test_settle_freezes_what_is_loaded_and_collects_its_garbage_first(restored_gc: None) -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self  # a cycle: only the collector frees it

    garbage = Node()
    kept = [Node() for _ in range(10)]
    garbage_id = id(garbage)
    del garbage
    heap.settle()
    assert gc.get_freeze_count() >= len(kept)
    assert all(gc.is_tracked(node) for node in kept)
    assert not any(id(obj) == garbage_id and isinstance(obj, Node) for obj in gc.get_objects())
    assert not any(obj in kept for obj in gc.get_objects())  # frozen objects are not collected any more
