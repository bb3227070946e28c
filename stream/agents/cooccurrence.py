"""The co-occurrence agent: ``item-pairs`` (partitioned by item) → counts → ``item-associations``.

Each ``item-pairs`` message carries one interactions batch's item updates for the items this
partition owns, plus the senders' absolute transaction counts. Per batch the updates are
grouped by item and applied with one table read and one table write per item
(``ItemAssociations.apply`` drops an ``event_id`` it has already counted, so replays are
harmless); then each touched item's record is published to the compacted
``item-associations`` topic, which every worker replicates.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from typing import Any

import orjson

from stream.agents.deadletters import dead_letter
from stream.agents.replica import replica
from stream.app import app, item_associations_topic, item_pairs_topic, metrics, settings
from stream.engine import CooccurrenceConfig, ItemAssociations, ItemUpdate
from stream.partitions import acting_for, partition_state_key
from stream.tables import cooccurrence_table

log = logging.getLogger(__name__)

# A replay re-sends at most the batch that was in flight when a worker died (state is
# flushed right after each batch), so remembering this many ids per item covers it.
COOCCURRENCE = CooccurrenceConfig(dedup_capacity=4096)
PUBLISHED_PARTNERS = 20


def _updates_of(value: bytes) -> tuple[dict[str, float], list[ItemUpdate]]:
    payload = orjson.loads(value)
    updates = [
        ItemUpdate(item, event_id, int(ts), occurrence, tuple((p, c) for p, c in partners))
        for item, event_id, ts, occurrence, partners in payload["updates"]
    ]
    return {str(k): float(v) for k, v in payload.get("tally", {}).items()}, updates


def association_record(state: ItemAssociations, tally: dict[str, float]) -> bytes:
    """The published record: raw counts (for exact metrics downstream) and metrics now."""
    partners = {
        channel: [[key, count] for key, count, _ in sketch.top(PUBLISHED_PARTNERS)]
        for channel, sketch in state.partners.items()
    }
    record: dict[str, Any] = {
        "item_id": state.item_id,
        "occurrences": state.occurrences,
        "item_count": max(state.occurrences.values(), default=0.0),
        "partners": partners,
        "tally": tally,
        "transactions": sum(tally.values()),
        "ts": int(time.time() * 1000),
    }
    replica.associations[state.item_id] = record  # metrics below use this worker's latest view
    record["channels"] = {}
    for channel in partners:
        rules = [rule for rule in replica.rules(state.item_id, top_k=PUBLISHED_PARTNERS, channels=(channel,))]
        record["channels"][channel] = [
            {
                "item_id": rule.consequent,
                "count": rule.pair_count,
                "support": rule.support,
                "confidence": rule.confidence,
                "lift": rule.lift,
                "llr": rule.llr,
            }
            for rule in rules
        ]
    return orjson.dumps(record)


async def process_pairs(batch: list[Any]) -> None:
    by_item: dict[str, list[ItemUpdate]] = defaultdict(list)
    event_of_item: dict[str, Any] = {}
    tallies: dict[int, dict[str, float]] = {}
    first_of_partition: dict[int, Any] = {}
    for event in batch:
        message = event.message
        try:
            tally, updates = _updates_of(message.value)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            await dead_letter(message, "bad_pairs", str(exc))
            continue
        first_of_partition.setdefault(message.partition, event)
        known = tallies.setdefault(message.partition, _stored_tally(message.partition))
        for source, count in tally.items():
            known[source] = max(known.get(source, 0.0), count)
        for update in updates:
            by_item[update.item_id].append(update)
            event_of_item.setdefault(update.item_id, event)

    futures = []
    for item_id, updates in by_item.items():
        key = item_id.encode()
        stored = cooccurrence_table.get(key)
        state = ItemAssociations.from_bytes(stored) if stored else ItemAssociations(item_id)
        applied = state.apply(updates, COOCCURRENCE)
        metrics.pairs_applied.inc(applied)
        event = event_of_item[item_id]
        with acting_for(event):
            cooccurrence_table[key] = state.to_bytes()
        tally = tallies[event.message.partition]
        futures.append(await item_associations_topic.send(key=key, value=association_record(state, tally)))
    for partition, tally in tallies.items():
        with acting_for(first_of_partition[partition]):
            cooccurrence_table[partition_state_key("tally", partition, settings.partitions)] = orjson.dumps(
                tally
            )
    for future in futures:
        await future


def _stored_tally(partition: int) -> dict[str, float]:
    stored = cooccurrence_table.get(partition_state_key("tally", partition, settings.partitions))
    return {str(k): float(v) for k, v in orjson.loads(stored).items()} if stored else {}


@app.agent(item_pairs_topic, name="xsell-cooccurrence")
async def cooccurrence(stream: Any) -> None:
    """Count pairs per item and publish the item's associations."""
    async for batch in stream.take_events(settings.batch_size, within=settings.batch_within_s):
        started = time.perf_counter()
        metrics.batch_size.labels(agent="cooccurrence").observe(len(batch))
        try:
            await process_pairs(batch)
        except Exception as exc:
            log.exception("co-occurrence batch failed; dead-lettering its %d messages", len(batch))
            for event in batch:
                await dead_letter(event.message, f"internal_error:{type(exc).__name__}", str(exc))
        metrics.batch_seconds.labels(agent="cooccurrence").observe(time.perf_counter() - started)
