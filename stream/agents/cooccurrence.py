"""The co-occurrence agent: ``item-pairs`` (partitioned by item) → counts → ``item-associations``.

Each ``item-pairs`` message carries one interactions batch's item updates for the items this
partition owns. Per batch the updates are grouped by item and applied with one table read
and one table write per item (``ItemAssociations.apply`` drops an ``event_id`` it has
already counted, so replays are harmless); then each touched item's record is published to
the compacted ``item-associations`` topic, which every worker replicates. N travels inside
the item states (``opened``: the transactions each item's events opened), so one table
write per item carries everything a crash could otherwise split.
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
from stream.partitions import acting_for
from stream.tables import cooccurrence_table

log = logging.getLogger(__name__)

# A replay re-sends at most the last batch of each source partition (its outbox, re-sent
# when a worker takes the partition over), so remembering this many ids per item covers it.
COOCCURRENCE = CooccurrenceConfig(dedup_capacity=4096)
PUBLISHED_PARTNERS = 20


def _updates_of(value: bytes) -> list[ItemUpdate]:
    """An ``item-pairs`` message: ``{"updates": [[item, event_id, ts, occurrence, partners, opens]]}``."""
    return [
        ItemUpdate(item, event_id, int(ts), occurrence, tuple((p, c) for p, c in partners), opens=bool(flag[:1] == [1]))
        for item, event_id, ts, occurrence, partners, *flag in orjson.loads(value)["updates"]
    ]


def association_record(state: ItemAssociations) -> bytes:
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
        "opened": state.opened,
        "ts": int(time.time() * 1000),
    }
    replica.apply_association(state.item_id, record)  # metrics below use this worker's latest view
    record["transactions"] = replica.transactions
    rules = replica.channel_rules(state.item_id)
    record["channels"] = {
        channel: [
            {
                "item_id": rule.consequent,
                "count": rule.pair_count,
                "support": rule.support,
                "confidence": rule.confidence,
                "lift": rule.lift,
                "llr": rule.llr,
            }
            for rule in rules.get(channel, [])[:PUBLISHED_PARTNERS]
        ]
        for channel in partners
    }
    return orjson.dumps(record)


async def process_pairs(batch: list[Any]) -> None:
    by_item: dict[str, list[ItemUpdate]] = defaultdict(list)
    event_of_item: dict[str, Any] = {}
    for event in batch:
        message = event.message
        try:
            updates = _updates_of(message.value)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            await dead_letter(message, "bad_pairs", str(exc))
            continue
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
        futures.append(await item_associations_topic.send(key=key, value=association_record(state)))
    for future in futures:
        await future


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
