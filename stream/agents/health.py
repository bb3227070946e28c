"""Worker health in metrics: readiness, consumer lag per assigned partition, recoveries."""

from __future__ import annotations

from typing import Any

from stream.app import app, committed_offset, metrics
from stream.views import is_ready

_lag_series: set[tuple[str, str]] = set()


@app.timer(2.0)
async def report_lag() -> None:
    """Lag = log end offset − committed offset (what is processed, not merely fetched), for the
    partitions this worker owns right now."""
    is_ready()
    consumer = app.consumer
    seen: set[tuple[str, str]] = set()
    for tp in consumer.assignment():
        if tp.topic.endswith("-changelog"):
            continue
        highwater = consumer.highwater(tp)
        if highwater is None:
            continue
        committed = committed_offset(tp)
        labels = (tp.topic, str(tp.partition))
        metrics.consumer_lag.labels(*labels).set(max(0, highwater - (committed or 0)))
        seen.add(labels)
    for labels in _lag_series - seen:  # revoked: stop reporting a stale value
        metrics.consumer_lag.remove(*labels)
    _lag_series.clear()
    _lag_series.update(seen)


@app.timer(10.0)
async def report_table_sizes() -> None:
    """Keys per table of this worker's role (counting walks the store, so not on the hot path)."""
    for name, table in app.tables.items():
        metrics.table_keys.labels(table=name).set(len(table))


@app.on_partitions_assigned.connect  # type: ignore[arg-type]  # mode's type wants a `signal` keyword: in kwargs
async def _count_recoveries(sender: Any, assigned: Any, **kwargs: Any) -> None:
    metrics.recoveries.inc()
