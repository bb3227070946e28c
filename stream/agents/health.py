"""Worker health in metrics: readiness, consumer lag per assigned partition, recoveries."""

from __future__ import annotations

from typing import Any

from faust.stores.rocksdb import Store as RocksDBStore

from stream.app import app, committed_offset, metrics
from stream.views import is_ready

_lag_series: set[tuple[str, str]] = set()


LAG_REPORT_S = 0.5


@app.timer(LAG_REPORT_S)
async def report_lag() -> None:
    """Lag = log end offset − committed offset (what is processed, not merely fetched), for the
    partitions this worker owns right now; every half second (a few dict reads per partition),
    so a burst that a worker absorbs within seconds still shows."""
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
    """Keys per table of this worker's role (``table_keys``)."""
    for name, table in app.tables.items():
        metrics.table_keys.labels(table=name).set(table_keys(table))


ROCKSDB_KEYS_ESTIMATE = "rocksdb.estimate-num-keys"


def table_keys(table: Any) -> int:
    """Keys in a table's partitions on this worker; for a RocksDB store, RocksDB's estimate.

    Counting a RocksDB store's keys walks every key, values' blocks included, on the event
    loop: 1.4 s per 200,000 users of ~6 KB (measured), every 10 s. The estimate is read
    in constant time, as Kafka Streams reports it (``estimate-num-keys``): a key written
    again counts again until RocksDB compacts it (deletes are subtracted), and each
    partition holds one more key, Faust's changelog offset.
    """
    if not isinstance(table.data, RocksDBStore):  # the memory store: a dict
        return len(table)
    total = 0
    for db in table.data._dbs_for_actives():
        if hasattr(db, "property_int_value"):  # rocksdict
            total += int(db.property_int_value(ROCKSDB_KEYS_ESTIMATE) or 0)
        else:  # python-rocksdb
            total += int(db.get_property(ROCKSDB_KEYS_ESTIMATE.encode()) or 0)
    return total


@app.on_partitions_assigned.connect  # type: ignore[arg-type]  # mode's type wants a `signal` keyword: in kwargs
async def _count_recoveries(sender: Any, assigned: Any, **kwargs: Any) -> None:
    metrics.recoveries.inc()
