"""Every Prometheus metric of an xsell worker, built in one place.

Names carry the ``xsell_`` prefix and their unit; labels are few and bounded (event kind,
outcome, reason code, candidate source, topic and partition). ``METRICS_DOC`` documents
each one (rendered into the README; a test checks that every exported metric is in it).
A worker builds one ``Metrics`` on its own ``CollectorRegistry``, so tests may run several.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest

# The *_created series only double the exposition; nothing here reads them.
disable_created_metrics()

__all__ = ["METRICS_DOC", "Metrics"]

BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

METRICS_DOC: dict[str, str] = {
    "xsell_events_consumed_total": (
        "Input events consumed, by kind and outcome (ok, duplicate, dead_letter, redelivered)."
    ),
    "xsell_dead_letters_total": "Messages sent to the dead-letter topic, by source topic and reason code.",
    "xsell_batch_size_events": "Events per batch taken by an agent, by agent.",
    "xsell_batch_processing_seconds": "Time to process one batch, by agent.",
    "xsell_end_to_end_latency_seconds": "From the input record's produce time to its recommendation being sent.",
    "xsell_recommendations_published_total": "Cross-recommendation messages published.",
    "xsell_ad_targets_published_total": "Ad-target messages published.",
    "xsell_candidates_total": "Recommendation candidates considered, by source (associations, similar, trending).",
    "xsell_item_pairs_sent_total": "Item-pair increments sent to the co-occurrence agent (after batch aggregation).",
    "xsell_pair_increments_applied_total": "Pair increments applied to the co-occurrence table.",
    "xsell_index_items": "Items in this worker's HNSW replica.",
    "xsell_index_snapshot_age_seconds": "Age of the last on-disk index snapshot.",
    "xsell_encoder_items_total": "Catalog items and campaigns encoded, by kind.",
    "xsell_encoder_batch_seconds": "Time to encode one batch of texts.",
    "xsell_table_keys": "Keys in a table on this worker, by table (RocksDB stores: RocksDB's estimate).",
    "xsell_consumer_lag_messages": "Messages behind the log end, by topic and partition (assigned partitions only).",
    "xsell_rebalances_total": "Consumer group rebalances this worker went through.",
    "xsell_recoveries_total": "Table recoveries completed by this worker.",
    "xsell_gc_pause_seconds": "Pauses of Python's garbage collector (the whole worker stops), by generation.",
    "xsell_worker_up": "1 while the worker process runs.",
    "xsell_worker_ready": "1 once tables are recovered and the replica (index, associations) has caught up.",
}


@dataclass
class Metrics:
    """The metrics of one worker, registered on ``registry``."""

    registry: CollectorRegistry

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events_consumed = Counter(
            "xsell_events_consumed",
            METRICS_DOC["xsell_events_consumed_total"],
            ["kind", "outcome"],
            registry=r,
        )
        self.dead_letters = Counter(
            "xsell_dead_letters", METRICS_DOC["xsell_dead_letters_total"], ["topic", "reason"], registry=r
        )
        self.batch_size = Histogram(
            "xsell_batch_size_events",
            METRICS_DOC["xsell_batch_size_events"],
            ["agent"],
            buckets=BATCH_SIZE_BUCKETS,
            registry=r,
        )
        self.batch_seconds = Histogram(
            "xsell_batch_processing_seconds",
            METRICS_DOC["xsell_batch_processing_seconds"],
            ["agent"],
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self.end_to_end_latency = Histogram(
            "xsell_end_to_end_latency_seconds",
            METRICS_DOC["xsell_end_to_end_latency_seconds"],
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self.recommendations = Counter(
            "xsell_recommendations_published",
            METRICS_DOC["xsell_recommendations_published_total"],
            registry=r,
        )
        self.ad_targets = Counter(
            "xsell_ad_targets_published", METRICS_DOC["xsell_ad_targets_published_total"], registry=r
        )
        self.candidates = Counter(
            "xsell_candidates", METRICS_DOC["xsell_candidates_total"], ["source"], registry=r
        )
        self.pairs_sent = Counter(
            "xsell_item_pairs_sent", METRICS_DOC["xsell_item_pairs_sent_total"], registry=r
        )
        self.pairs_applied = Counter(
            "xsell_pair_increments_applied", METRICS_DOC["xsell_pair_increments_applied_total"], registry=r
        )
        self.index_items = Gauge("xsell_index_items", METRICS_DOC["xsell_index_items"], registry=r)
        self.snapshot_age = Gauge(
            "xsell_index_snapshot_age_seconds", METRICS_DOC["xsell_index_snapshot_age_seconds"], registry=r
        )
        self.encoder_items = Counter(
            "xsell_encoder_items", METRICS_DOC["xsell_encoder_items_total"], ["kind"], registry=r
        )
        self.encoder_batch_seconds = Histogram(
            "xsell_encoder_batch_seconds",
            METRICS_DOC["xsell_encoder_batch_seconds"],
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self.table_keys = Gauge("xsell_table_keys", METRICS_DOC["xsell_table_keys"], ["table"], registry=r)
        self.consumer_lag = Gauge(
            "xsell_consumer_lag_messages",
            METRICS_DOC["xsell_consumer_lag_messages"],
            ["topic", "partition"],
            registry=r,
        )
        self.rebalances = Counter("xsell_rebalances", METRICS_DOC["xsell_rebalances_total"], registry=r)
        self.recoveries = Counter("xsell_recoveries", METRICS_DOC["xsell_recoveries_total"], registry=r)
        self.gc_pause_seconds = Histogram(
            "xsell_gc_pause_seconds",
            METRICS_DOC["xsell_gc_pause_seconds"],
            ["generation"],
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self.worker_up = Gauge("xsell_worker_up", METRICS_DOC["xsell_worker_up"], registry=r)
        self.worker_ready = Gauge("xsell_worker_ready", METRICS_DOC["xsell_worker_ready"], registry=r)
        self.worker_up.set(1)

    def exposition(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)
