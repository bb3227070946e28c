"""The benchmark's own Kafka traffic: topics, bulk produce, end offsets and reading outputs.

Kept apart from the measurement so every phase reads its outputs the same way: a phase
waits (cheaply, by polling end offsets) until its output topic holds what it expects, and
only then reads it, so the reading never competes with the worker it measures.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from stream.benchmarks.errors import BenchmarkError

__all__ = [
    "OutputRecord",
    "create_plain_topics",
    "end_offsets",
    "produce",
    "read_topic",
    "wait_for_group",
    "wait_for_offsets",
]

PRODUCE_LINGER_MS = 20
PRODUCE_BATCH_BYTES = 256 * 1024
READ_BATCH = 10_000
POLL_EVERY_S = 0.5

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class OutputRecord:
    """One record read back: its CreateTime (ms, set by the producer that wrote it), key and value."""

    timestamp_ms: int
    key: bytes | None
    value: bytes | None


async def create_plain_topics(bootstrap: str, names: Iterable[str], partitions: int) -> None:
    """Create plain (non-compacted) topics that do not exist yet."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names]
        missing = [topic for topic in missing if topic.name not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()


async def produce(
    bootstrap: str, messages: Iterable[tuple[str, bytes | None, bytes | None]], on_sent: Progress | None = None
) -> int:
    """Send every (topic, key, value) without awaiting each delivery; wait for all at the end."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=PRODUCE_LINGER_MS,
        max_batch_size=PRODUCE_BATCH_BYTES,
        max_request_size=4 * 1024 * 1024,
        acks=1,
    )
    await producer.start()
    sent = 0
    try:
        pending = []
        for topic, key, value in messages:
            pending.append(await producer.send(topic, key=key, value=value))
            sent += 1
            if len(pending) >= READ_BATCH:
                await asyncio.gather(*pending)
                pending.clear()
                if on_sent is not None:
                    on_sent(sent)
        await asyncio.gather(*pending)
        if on_sent is not None:
            on_sent(sent)
    finally:
        await producer.stop()
    return sent


async def end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    """The log end offset of every partition of ``topic``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = await partitions_of(consumer, topic)
        return dict(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


async def partitions_of(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    numbers = consumer.partitions_for_topic(topic)
    if not numbers:
        await consumer._client.force_metadata_update()
        numbers = consumer.partitions_for_topic(topic)
    if not numbers:
        raise BenchmarkError(f"topic {topic} does not exist")
    return [TopicPartition(topic, number) for number in sorted(numbers)]


async def wait_for_offsets(
    bootstrap: str,
    topic: str,
    *,
    total: int,
    since: dict[TopicPartition, int] | None = None,
    timeout_s: float,
    alive: Callable[[], None] = lambda: None,
    on_progress: Progress | None = None,
    stall_s: float | None = None,
) -> int:
    """Poll ``topic``'s end offsets until ``total`` records were written after ``since``.

    Returns the count reached; stops early (without raising) when nothing new came for
    ``stall_s`` seconds; raises ``BenchmarkError`` at ``timeout_s``. ``alive`` is called on
    every poll (it raises when the worker being measured has died).
    """
    since = since or {}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = await partitions_of(consumer, topic)
        started = last_change = time.monotonic()
        last = -1
        while True:
            alive()
            ends = await consumer.end_offsets(partitions)
            count = sum(end - since.get(tp, 0) for tp, end in ends.items())
            if on_progress is not None:
                on_progress(min(count, total))
            if count >= total:
                return count
            now = time.monotonic()
            if count != last:
                last, last_change = count, now
            elif stall_s is not None and count > 0 and now - last_change > stall_s:
                return count
            if now - started > timeout_s:
                raise BenchmarkError(f"{topic}: {count} of {total} records after {timeout_s:.0f}s")
            await asyncio.sleep(POLL_EVERY_S)
    finally:
        await consumer.stop()


async def wait_for_group(
    bootstrap: str, group: str, topic: str, *, timeout_s: float, alive: Callable[[], None] = lambda: None
) -> float:
    """Seconds until consumer ``group`` has committed every record ``topic`` holds now; raises
    ``BenchmarkError`` at ``timeout_s``. Commits come every commit interval, so it is that coarse."""
    targets = await end_offsets(bootstrap, topic)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        started = time.monotonic()
        while True:
            alive()
            committed = await admin.list_consumer_group_offsets(group, partitions=list(targets))
            behind = sum(
                max(0, end - (committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0))
                for tp, end in targets.items()
            )
            elapsed = time.monotonic() - started
            if not behind:
                return elapsed
            if elapsed > timeout_s:
                raise BenchmarkError(f"group {group}: {behind} records of {topic} not committed after {timeout_s:.0f}s")
            await asyncio.sleep(POLL_EVERY_S / 5)
    finally:
        await admin.close()


async def read_topic(
    bootstrap: str, topic: str, *, since: dict[TopicPartition, int] | None = None
) -> list[OutputRecord]:
    """Every record of ``topic`` from ``since`` (default: the beginning) to its end offsets now."""
    since = since or {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    try:
        partitions = await partitions_of(consumer, topic)
        ends = await consumer.end_offsets(partitions)
        wanted = {tp: end for tp, end in ends.items() if end > since.get(tp, 0)}
        if not wanted:
            return []
        consumer.assign(list(wanted))
        for tp in wanted:
            if tp in since:
                consumer.seek(tp, since[tp])
            else:
                await consumer.seek_to_beginning(tp)
        found: list[OutputRecord] = []
        remaining = dict(wanted)
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000, max_records=READ_BATCH)
            for tp, records in batches.items():
                for record in records:
                    if record.offset < wanted[tp]:
                        found.append(OutputRecord(record.timestamp, record.key, record.value))
                if records and records[-1].offset + 1 >= wanted[tp]:
                    remaining.pop(tp, None)
            for tp in list(remaining):
                if await consumer.position(tp) >= wanted[tp]:
                    remaining.pop(tp)
        return found
    finally:
        await consumer.stop()
