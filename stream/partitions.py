"""Kafka's default partitioning, and writing Faust tables from a batch of events.

Producers (Java's and aiokafka's default partitioners) place a keyed record in
``murmur2(key) mod partitions``; xsell uses the same function to address the co-occurrence
partition that owns an item, so one message per destination partition can carry a whole
batch's pair increments for the items that partition owns.

Faust writes a table's changelog to the partition of the *current event*, a context
variable that batches (``take_events``, ``stream.batches.take_batches``) do not set in the
agent's own task. ``acting_for`` sets it explicitly around the writes that belong to one
source partition.

``send_in_batches`` hands many keyed records to an aiokafka producer as one record batch per
partition, placed where the default partitioner would place each record;
``send_to_partitions`` does the same for records whose partitions are given (a table's
changelog records go to their source partition, ``stream.tables.TableWrites``). ``send_now``
lets what was handed over leave without waiting for the producer's linger.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2
from faust.streams import _current_event

__all__ = [
    "acting_for",
    "cached_partition_for",
    "partition_for",
    "partition_state_key",
    "send_in_batches",
    "send_now",
    "send_to_partitions",
]


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@lru_cache(maxsize=1 << 16)
def cached_partition_for(key: bytes, partitions: int) -> int:
    """``partition_for`` of keys that repeat (users, items): aiokafka's murmur2 is pure Python."""
    return partition_for(key, partitions)


async def send_in_batches(
    producer: AIOKafkaProducer, topic: str, records: Iterable[tuple[bytes, bytes]]
) -> list[asyncio.Future]:
    """Send keyed records as one record batch per partition; return the batches' delivery futures.

    Each record goes where ``producer.send`` would put it (the default partitioner over the
    topic's partitions), in the given order within its partition. ``send`` pays a metadata
    check, a partitioner call, an accumulator entry and a future per record; here a record
    costs one append.
    """
    await producer.client._wait_on_metadata(topic)
    partitions = sorted(producer.client.cluster.partitions_for_topic(topic))
    by_partition: dict[int, list[tuple[bytes, bytes]]] = {}
    for key, value in records:
        partition = partitions[cached_partition_for(key, len(partitions))]
        rows = by_partition.get(partition)
        if rows is None:
            rows = by_partition[partition] = []
        rows.append((key, value))
    return [future for _, _, future in await send_to_partitions(producer, topic, by_partition)]


def send_now(producer: AIOKafkaProducer) -> None:
    """Let every record handed to ``producer`` so far leave with its sender's next request.

    The producer holds a record batch back until it is full or ``linger_ms`` has passed, to
    gather records still to come. A worker that has handed over all it has (a batch's answers
    and state writes, then its item pairs) and will wait for their delivery gains nothing by
    that wait: it closes the open batches, so nothing joins them, and wakes the sender, as
    aiokafka's ``flush_for_commit`` does before a transaction commits. Records handed over
    later start new batches and linger as usual.
    """
    accumulator = producer._message_accumulator
    for batches in accumulator._batches.values():
        for batch in batches:
            batch._builder.close()
    if not accumulator._waiter_future.done():
        accumulator._waiter_future.set_result(None)


async def send_to_partitions(
    producer: AIOKafkaProducer, topic: str, by_partition: Mapping[int, Iterable[tuple[bytes, bytes]]]
) -> list[tuple[int, int, asyncio.Future]]:
    """Send each partition's keyed records, in order, as record batches of that partition.

    A batch that fills up (the producer's ``max_batch_size``) is sent and the next one
    started. Returns ``(partition, records in the batch, delivery future)`` per batch; the
    future's offset is the batch's first record's.
    """
    sent = []

    async def send(builder: Any, partition: int) -> None:
        future = await producer.send_batch(builder, topic, partition=partition)
        sent.append((partition, builder.record_count(), future))

    for partition, records in by_partition.items():
        builder = producer.create_batch()
        for key, value in records:
            if builder.append(key=key, value=value, timestamp=None) is None:  # full: send it, start the next
                await send(builder, partition)
                builder = producer.create_batch()
                builder.append(key=key, value=value, timestamp=None)  # a batch always takes its first record
        if builder.record_count():
            await send(builder, partition)
    return sent


@lru_cache(maxsize=1024)
def partition_state_key(name: str, partition: int, partitions: int) -> bytes:
    """A table key for per-partition state that itself hashes to ``partition``.

    Faust restores a key to the partition its changelog record was written to; choosing a key
    that the default partitioner also maps there keeps table routing and recovery consistent.
    """
    suffix = 0
    while True:
        key = f"__{name}__:{partition}:{suffix}".encode()
        if partition_for(key, partitions) == partition:
            return key
        suffix += 1


@contextmanager
def acting_for(event: Any) -> Iterator[None]:
    """Table writes inside this block go to ``event``'s partition (its changelog and store)."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)
