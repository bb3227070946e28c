"""Every worker's replica of ``item-embeddings`` and ``item-associations``.

A plain aiokafka consumer per worker (no consumer group) reads *all* partitions of both
compacted topics, so every worker holds every item's vector (an HNSW ``ItemIndex``), every
active campaign (an ``AdTargeter``) and every item's association counts. This is the route
the design prefers to Faust's GlobalTable, which misbehaves with several workers
(faust-streaming #283).

The index is snapshotted to ``DATA_DIR/replica`` (atomic; the manifest records the
``item-embeddings`` offsets it reflects), so a restart reads only what is newer. A snapshot
older than the topic's ``delete.retention.ms`` (a day) is discarded: tombstones it missed
may have been compacted away. Campaigns are saved beside it with the same offsets.
Associations are re-read from the start of their topic at each start (one record per item).

The worker is ready (``/healthz``) once the replica has caught up with the log end offsets
it saw when it started.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from index import ItemIndex, SnapshotError
from stream import records
from stream.engine import (
    AdConfig,
    AdTargeter,
    AssociationRule,
    ItemCounts,
    TransactionTally,
)
from stream.engine.retrieval import (
    PUBLISHED_PARTNERS,
    PrecededBy,
    PublishedRule,
    TrendingItems,
    best_lift_rules_many,
    published_channel_rules,
)
from stream.metrics import Metrics
from stream.settings import Settings
from stream.topics import admin_security

__all__ = ["Replica"]

log = logging.getLogger(__name__)

SNAPSHOT_MAX_AGE_MS = 24 * 3600 * 1000  # = delete.retention.ms of the compacted topics
CAMPAIGNS_FILE = "campaigns.json"


# What a record's published rules start with when they are its last key, as
# ``stream.agents.cooccurrence`` writes them. Inside a JSON string a quote is escaped, so
# these bytes can only be a key.
_RULES_KEY = b',"channels":'
_COUNTS_KEYS = ("occurrences", "partners", "opened")


def parse_association_record(value: bytes) -> dict[str, Any]:
    """An item-associations record parsed without its published rules (``channels``), its
    partners as tuples (``frozen_partners``)."""
    record = _without_rules(value)
    if "partners" in record:
        record["partners"] = frozen_partners(record["partners"])
    return record


def _without_rules(value: bytes) -> dict[str, Any]:
    """The record without its ``channels``.

    The replica uses a record's counts and partners; the rules, recomputed from the latest
    counts whenever they are read, are most of a record's bytes. When they are the last key
    the record is parsed up to them; otherwise, or when what precedes them does not parse
    or lacks a count, the whole record is parsed and the rules dropped.
    """
    at = value.rfind(_RULES_KEY)
    if at > 0 and value.endswith(b"}"):
        try:
            record = orjson.loads(value[:at] + b"}")
        except orjson.JSONDecodeError:
            pass
        else:
            if isinstance(record, dict) and all(key in record for key in _COUNTS_KEYS):
                return record
    record = orjson.loads(value)
    if not isinstance(record, dict):
        raise ValueError("an item-associations record is not a JSON object")
    record.pop("channels", None)
    return record


def frozen_partners(partners: Any) -> dict[str, tuple[tuple[Any, ...], ...]]:
    """A record's partners, channel → ``(partner, pair count)`` pairs, as tuples, not lists.

    A replica holds every item's record for as long as the worker runs, and a record's
    partner pairs, as orjson's lists, were most of the objects the garbage collector kept
    walking: 228,000 of ~300,000 in an answering worker of the pipeline benchmark, walked by
    every middle (~90 ms) and full (200–250 ms) collection. A collection stops tracking a
    tuple that holds only strings and numbers, so these pairs leave the collector's
    generations at their first young collection (docs/DECISIONS.md).
    """
    if partners is None:
        return {}
    if not isinstance(partners, dict):
        raise ValueError("its partners are not an object")
    frozen = {}
    for channel, pairs in partners.items():
        if not isinstance(pairs, list | tuple) or not all(
            isinstance(pair, list | tuple) and len(pair) == 2 for pair in pairs
        ):
            raise ValueError(f"its {channel!r} partners are not (partner, count) pairs")
        frozen[channel] = tuple([tuple(pair) for pair in pairs])
    return frozen


class Replica:
    """Item vectors, campaigns and associations, kept current from Kafka."""

    def __init__(self, settings: Settings, metrics: Metrics, *, before_ready: Callable[[], None] | None = None) -> None:
        """``before_ready``: runs once everything is read, just before ``ready`` is set (the
        worker settles its heap there, so the collection does not delay the first answers)."""
        self.settings = settings
        self.metrics = metrics
        self.before_ready = before_ready
        self.embeddings_topic = settings.topic("item-embeddings")
        self.associations_topic = settings.topic("item-associations")
        self.directory = Path(settings.data_dir) / "replica"
        self.index: ItemIndex | None = None
        self.model_version = ""
        self.ads = AdTargeter(AdConfig(threshold=settings.ad_threshold, frequency_cap=settings.ad_frequency_cap))
        self.campaign_vectors: dict[str, tuple[list[float], list[str]]] = {}
        self.associations: dict[str, dict[str, Any]] = {}
        # partner → the items whose records list it; only a worker that ranks reads it
        self.preceded_by: PrecededBy | None = PrecededBy() if settings.runs_interactions else None
        self.item_counts = ItemCounts()
        self.tally = TransactionTally()
        self.transactions = 0.0  # tally.total, kept current on the event loop
        self._trending = TrendingItems()
        self.offsets: dict[str, int] = {}
        self.ready = asyncio.Event()
        self.snapshot_at = 0.0
        self._dirty = False
        # Records this worker published after applying them here: key → value (``published``).
        self._own: dict[bytes, bytes] = {}
        # Index writes and snapshots run here, never on the event loop.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xsell-replica")
        self._consumer: AIOKafkaConsumer | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self, model_version: str, dim: int) -> None:
        """Load the snapshot, then follow both topics until cancelled."""
        self.model_version = model_version
        await self._in_thread(self._load_snapshot, dim)
        await self._follow((self.embeddings_topic, self.associations_topic))

    async def run_associations(self) -> None:
        """Follow ``item-associations`` only until cancelled (a co-occurrence worker: no encoder, no index)."""
        await self._follow((self.associations_topic,))

    async def _follow(self, topics: tuple[str, ...]) -> None:
        consumer = self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            **admin_security(self.settings),
        )
        await consumer.start()
        try:
            partitions = await self._assign(consumer, topics)
            targets = await consumer.end_offsets(partitions)
            last_snapshot = time.monotonic()
            while True:
                batches = await consumer.getmany(timeout_ms=200, max_records=5000)
                if batches:
                    await self._apply(batches)
                if not self.ready.is_set() and all(
                    await asyncio.gather(*(self._reached(consumer, tp, end) for tp, end in targets.items()))
                ):
                    if await self._become_ready():
                        last_snapshot = time.monotonic()
                if self._dirty and time.monotonic() - last_snapshot > self.settings.snapshot_interval_s:
                    await self.snapshot()
                    last_snapshot = time.monotonic()
                self.metrics.snapshot_age.set(time.time() - self.snapshot_at if self.snapshot_at else 0)
        finally:
            await consumer.stop()
            if self._dirty:
                await self.snapshot()

    async def _become_ready(self) -> bool:
        """Everything is read: snapshot what was read (if anything), run ``before_ready``, set
        ``ready``. Both come first because both pause the worker, a snapshot's queries briefly
        and the heap's collection for a quarter of a second: before events are answered, not
        among the first answers. Returns whether a snapshot was written."""
        wrote = self._dirty
        if wrote:
            await self.snapshot()
        if self.before_ready is not None:
            self.before_ready()
        self.ready.set()
        log.info("replica ready: %d items, %d associations", self.size, len(self.associations))
        return wrote

    @property
    def size(self) -> int:
        return 0 if self.index is None else len(self.index)

    async def _reached(self, consumer: AIOKafkaConsumer, tp: TopicPartition, end: int) -> bool:
        return await consumer.position(tp) >= end

    async def _assign(self, consumer: AIOKafkaConsumer, topics: tuple[str, ...]) -> list[TopicPartition]:
        partitions: list[TopicPartition] = []
        for topic in topics:
            numbers = None
            while not numbers:
                numbers = consumer.partitions_for_topic(topic)
                if not numbers:
                    await consumer._client.force_metadata_update()  # topic created moments ago
                    numbers = consumer.partitions_for_topic(topic)
                    if not numbers:
                        log.info("waiting for topic %s to exist", topic)
                        await asyncio.sleep(1.0)
            partitions.extend(TopicPartition(topic, number) for number in sorted(numbers))
        consumer.assign(partitions)
        for tp in partitions:
            offset = self.offsets.get(f"{tp.topic}[{tp.partition}]") if tp.topic == self.embeddings_topic else None
            if offset is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, offset)
        return partitions

    async def _in_thread(self, function: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    # -- applying records ----------------------------------------------------------------------

    async def _apply(self, batches: dict[TopicPartition, list[Any]]) -> None:
        upserts: dict[str, tuple[np.ndarray, dict[str, Any]]] = {}
        deletes: set[str] = set()
        for tp, messages in batches.items():
            if tp.topic == self.embeddings_topic:
                for message in messages:
                    self._embedding(message.key, message.value, upserts, deletes)
                self.offsets[f"{tp.topic}[{tp.partition}]"] = messages[-1].offset + 1
            else:
                for message in messages:
                    self._association(message.key, message.value)
        if upserts or deletes:
            await self._in_thread(self._write_index, upserts, deletes)
            self._dirty = True
            self.metrics.index_items.set(self.size)

    def _embedding(
        self,
        key: bytes | None,
        value: bytes | None,
        upserts: dict[str, tuple[np.ndarray, dict[str, Any]]],
        deletes: set[str],
    ) -> None:
        kind, _, identifier = (key or b"").decode("utf-8", "replace").partition(":")
        if value is None:
            if kind == "item":
                upserts.pop(identifier, None)
                deletes.add(identifier)
            elif kind == "campaign":
                self.ads.upsert(identifier, np.zeros(1), active=False)
                self.campaign_vectors.pop(identifier, None)
                self._dirty = True
            return
        try:
            record = orjson.loads(value)
            vector = records.decode_vector(record["vector_base64"], int(record["dim"]))
        except (orjson.JSONDecodeError, KeyError, ValueError, TypeError):
            log.warning("skipping a malformed item-embeddings record for key %r", key)
            return
        if record.get("model") != self.model_version:
            log.warning(
                "skipping %s: encoded by %s, this worker runs %s",
                key,
                record.get("model"),
                self.model_version,
            )
            return
        if kind == "item":
            deletes.discard(identifier)
            metadata = {
                "category": record.get("category"),
                "in_stock": bool(record.get("in_stock", True)),
                "title": record.get("title"),
            }
            upserts[identifier] = (vector, metadata)
        elif kind == "campaign":
            categories = list(record.get("categories") or [])
            self.ads.upsert(identifier, vector, categories)
            self.campaign_vectors[identifier] = (vector.tolist(), categories)
            self._dirty = True

    def _write_index(self, upserts: dict[str, tuple[np.ndarray, dict[str, Any]]], deletes: set[str]) -> None:
        assert self.index is not None
        if deletes:
            self.index.delete([item for item in deletes if item in self.index])
        if upserts:
            ids = list(upserts)
            self.index.upsert(ids, np.stack([upserts[i][0] for i in ids]), [upserts[i][1] for i in ids])

    def _association(self, key: bytes | None, value: bytes | None) -> None:
        if self._own and key is not None:
            own = self._own.pop(key, None)
            if own is not None and own == value:
                return  # applied when it was published (``published``), and nothing read since
        item_id = (key or b"").decode("utf-8", "replace")
        if value is None:
            gone = self.associations.pop(item_id, None)
            if self.preceded_by is not None and gone is not None:
                self.preceded_by.update(item_id, gone.get("partners"), None)
            return
        try:
            record = parse_association_record(value)
        except ValueError as exc:  # orjson.JSONDecodeError included
            log.warning("skipping a malformed item-associations record for %r: %s", item_id, exc)
            return
        self.apply_association(item_id, record)

    def published(self, records: Sequence[tuple[bytes, bytes]]) -> None:
        """This worker has applied these records (``apply_association``) and published them:
        reading them back from the topic need not parse and apply them again.

        A record read back is skipped only if it is still the latest one this worker
        published for its item and nothing else was read for that item in between; any other
        record read for the item forgets the entry. So a record another worker published
        for the item before this one (a partition handed over) and read only after this
        worker applied its own is applied, and this worker's own record, read after it,
        is then applied again on top: the item ends where the topic's order says, as when
        every record was read back.
        """
        self._own.update(records)

    def apply_association(self, item_id: str, record: dict[str, Any]) -> None:
        """Take an item's latest associations record (from the topic, or just computed here),
        without its published rules (``channels``): the replica computes rules from the counts."""
        before = self.associations.get(item_id)
        self.associations[item_id] = record
        if self.preceded_by is not None:
            self.preceded_by.update(item_id, before.get("partners") if before else None, record.get("partners"))
        self.item_counts.set_item(item_id, record.get("occurrences") or {})
        # N is the sum of the transactions each item opened (see stream.engine.cooccurrence).
        self.tally.observe(f"item:{item_id}", float(record.get("opened") or 0.0))
        # Plain values for readers in other threads (ranking runs in an executor).
        self.transactions = self.tally.total
        self._trending.set_item(item_id, record.get("occurrences") or {})

    # -- reading ----------------------------------------------------------------------------

    def rules(self, item_id: str, *, top_k: int = 20, channels: tuple[str, ...] | None = None) -> list[AssociationRule]:
        """The item's association rules across channels, metrics from the latest counts, by lift."""
        return self.rules_many([item_id], top_k=top_k, channels=channels)[0]

    def rules_many(
        self,
        item_ids: Sequence[str],
        *,
        top_k: int = 20,
        channels: tuple[str, ...] | None = None,
        preceding: bool = False,
    ) -> list[list[AssociationRule]]:
        """``rules`` of each item (none for an item without a record), in one vectorised pass;
        with ``preceding`` (a worker that ranks) an item with a short record also gets the
        rules read backwards (the items seen before it), as the ranking asks for them."""
        associations = self.associations
        entries = [
            (item_id, record.get("occurrences") or {}, record.get("partners") or {})
            for item_id, record in ((item_id, associations.get(item_id) or {}) for item_id in item_ids)
        ]
        preceded_by = self.preceded_by if preceding else None

        def partners_of(item_id: str) -> Any:
            return (associations.get(item_id) or {}).get("partners")

        def before(item_id: str) -> list[tuple[str, Any, list[tuple[str, float]]]]:
            assert preceded_by is not None
            return [
                (antecedent, (associations.get(antecedent) or {}).get("occurrences") or {}, pairs)
                for antecedent, pairs in preceded_by.before(item_id, partners_of)
            ]

        return best_lift_rules_many(
            entries,
            consequent_count=self.item_counts.get,
            transactions=self.transactions,
            top_k=top_k,
            channels=channels,
            preceding=before if preceded_by is not None else None,
        )

    def published_rules(self, item_ids: Sequence[str]) -> list[dict[str, list[PublishedRule]]]:
        """Each item's best rules per channel (what its ``item-associations`` record lists),
        metrics from the latest counts, all items in one vectorised pass."""
        empty: dict[str, Any] = {}
        entries = [
            ((record.get("occurrences") or {}, record.get("partners") or {}) if record is not None else (empty, empty))
            for record in (self.associations.get(item_id) for item_id in item_ids)
        ]
        return published_channel_rules(
            entries, consequent_count=self.item_counts.get, transactions=self.transactions, top_k=PUBLISHED_PARTNERS
        )

    def trending(self, k: int) -> list[tuple[str, float]]:
        """The items in the most transactions (all channels), for users with nothing else.

        Call it on the event loop (the loop updates the counts). A call ranks the previous
        leaders and the items whose counts changed since, not every item (``TrendingItems``).
        """
        return self._trending.top(k)

    # -- snapshots -------------------------------------------------------------------------------

    def _new_index(self, dim: int) -> ItemIndex:
        return ItemIndex(
            dim,
            model_version=self.model_version,
            exact_below=self.settings.exact_index_below,
        )

    def _load_snapshot(self, dim: int) -> None:
        index_dir = self.directory / "index"
        try:
            index = ItemIndex.load(
                index_dir,
                expected_dim=dim,
                expected_model_version=self.model_version,
                exact_below=self.settings.exact_index_below,
            )
            campaigns = orjson.loads((self.directory / CAMPAIGNS_FILE).read_bytes())
        except (SnapshotError, OSError, orjson.JSONDecodeError) as exc:
            if index_dir.exists():
                log.warning("index snapshot not used (%s); rebuilding from item-embeddings", exc)
            self.index = self._new_index(dim)
            return
        created_ms = int(campaigns.get("created_at_ms", 0))
        if time.time() * 1000 - created_ms > SNAPSHOT_MAX_AGE_MS:
            log.warning("index snapshot is older than delete.retention.ms; rebuilding from item-embeddings")
            self.index = self._new_index(dim)
            return
        self.index = index
        for campaign_id, (vector, categories) in campaigns["campaigns"].items():
            self.ads.upsert(campaign_id, np.asarray(vector, dtype=np.float32), categories)
            self.campaign_vectors[campaign_id] = (vector, categories)
        # Resume from the older of the two snapshots' offsets; re-applying is idempotent.
        self.offsets = {
            key: min(offset, int(campaigns["offsets"].get(key, offset))) for key, offset in index.source_offsets.items()
        }
        self.snapshot_at = created_ms / 1000
        self.metrics.index_items.set(len(index))
        log.info("index snapshot loaded: %d items, resuming at %s", len(index), self.offsets)

    async def snapshot(self) -> None:
        """Write the index and campaigns to disk (atomically), with the offsets they reflect.

        A snapshot only shortens a restart: one that cannot be written (a full or read-only
        disk) is logged, and tried again after the next interval; the worker goes on answering.
        """
        offsets = dict(self.offsets)
        campaigns = dict(self.campaign_vectors)
        self._dirty = False
        try:
            await self._in_thread(self._write_snapshot, offsets, campaigns)
        except (SnapshotError, OSError):
            self._dirty = True
            log.exception("the index snapshot was not written to %s", self.directory)

    def _write_snapshot(self, offsets: dict[str, int], campaigns: dict[str, Any]) -> None:
        assert self.index is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        now_ms = int(time.time() * 1000)
        self.index.save(self.directory / "index", source_offsets=offsets)
        temporary = self.directory / f".{CAMPAIGNS_FILE}.tmp"
        temporary.write_bytes(orjson.dumps({"created_at_ms": now_ms, "offsets": offsets, "campaigns": campaigns}))
        os.replace(temporary, self.directory / CAMPAIGNS_FILE)
        self.snapshot_at = now_ms / 1000
