"""``send_in_batches`` and ``send_to_partitions`` against a real broker: every record where
``producer.send`` would put it (or in the partition given), in order, none lost or repeated,
also when a partition's records fill several batches."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from stream.partitions import send_in_batches, send_now, send_to_partitions

pytestmark = pytest.mark.integration

PARTITIONS = 4
RECORDS = 3_000
KEYS = 37


async def _create(bootstrap: str, *topics: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=PARTITIONS, replication_factor=1) for name in topics])
    finally:
        await admin.close()


async def _read(bootstrap: str, topic: str, count: int, *, with_offsets: bool = False) -> list:
    """(partition, key, value) of each record, and its offset ``with_offsets``."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    found: list = []

    def take(batches: dict) -> None:
        for tp, records in batches.items():
            for record in records:
                row = (tp.partition, record.key, orjson.loads(record.value))
                found.append((*row, record.offset) if with_offsets else row)

    try:
        while len(found) < count:
            take(await asyncio.wait_for(consumer.getmany(timeout_ms=1000, max_records=5000), 30))
        take(await consumer.getmany(timeout_ms=1000))
    finally:
        await consumer.stop()
    return found


async def _run(bootstrap: str, batched: str, reference: str) -> tuple[int, list, list]:
    await _create(bootstrap, batched, reference)
    # Small batches: each partition's ~750 records (~40 bytes each) need several.
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_batch_size=4096, linger_ms=5, acks="all")
    await producer.start()
    try:
        records = [(f"user-{seq % KEYS}".encode(), orjson.dumps({"seq": seq})) for seq in range(RECORDS)]
        futures = await send_in_batches(producer, batched, records)
        await asyncio.gather(*futures)
        # The reference: the same keys through producer.send and its default partitioner.
        await asyncio.gather(*[await producer.send(reference, key=key, value=value) for key, value in records[:KEYS]])
    finally:
        await producer.stop()
    return len(futures), await _read(bootstrap, batched, RECORDS), await _read(bootstrap, reference, KEYS)


def test_batched_records_land_where_send_puts_them_in_order(bootstrap: str, topic_name: str) -> None:
    batches, received, reference = asyncio.run(_run(bootstrap, topic_name, f"{topic_name}-reference"))

    assert batches > PARTITIONS  # some partitions filled more than one batch
    assert len(received) == RECORDS
    assert sorted(record["seq"] for _, _, record in received) == list(range(RECORDS))

    partition_of = {key: partition for partition, key, _ in reference}
    assert len(partition_of) == KEYS and len(set(partition_of.values())) == PARTITIONS
    seqs_of_key: dict[bytes, list[int]] = defaultdict(list)
    for partition, key, record in received:
        assert partition == partition_of[key], f"{key!r} in partition {partition}, send puts it in {partition_of[key]}"
        seqs_of_key[key].append(record["seq"])
    for key, seqs in seqs_of_key.items():
        assert seqs == sorted(seqs), f"{key!r} out of order"


async def _run_to_partitions(bootstrap: str, topic: str) -> tuple[dict, list, list]:
    await _create(bootstrap, topic)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_batch_size=4096, linger_ms=5, acks="all")
    await producer.start()
    try:
        # Keys in partitions the default partitioner would not choose: the given one wins.
        by_partition = {
            partition: [(b"same-key", orjson.dumps({"seq": seq, "p": partition})) for seq in range(400)]
            for partition in (3, 0, 2)
        }
        sent = await send_to_partitions(producer, topic, by_partition)
        metadata = [(partition, count, (await future).offset) for partition, count, future in sent]
    finally:
        await producer.stop()
    return by_partition, metadata, await _read(bootstrap, topic, 1200, with_offsets=True)


def test_records_go_to_the_given_partitions_and_batches_say_where_they_end(bootstrap: str, topic_name: str) -> None:
    by_partition, metadata, received = asyncio.run(_run_to_partitions(bootstrap, topic_name))

    for partition, rows in by_partition.items():
        got = [record for p, _, record, _ in received if p == partition]
        assert [orjson.dumps(record) for record in got] == [value for _, value in rows]
    assert len(received) == 1200 and {p for p, *_ in received} == {0, 2, 3}
    assert len(metadata) > 3  # 400 records of ~20 bytes fill several 4 KiB batches
    # A batch's first offset + its record count - 1 is the offset of its last record
    # (what a table's persisted changelog offset is set to); the batches tile each partition.
    offsets = {(p, offset): record for p, _, record, offset in received}
    for partition in by_partition:
        spans = sorted((first, first + count - 1) for p, count, first in metadata if p == partition)
        assert spans[0][0] == 0 and spans[-1][1] == 399
        assert all(end + 1 == start for (_, end), (start, _) in zip(spans, spans[1:], strict=False))
        assert all(offsets[partition, end]["seq"] == end for _, end in spans)  # the batch's last record


LINGER_FOREVER_MS = 3_600_000  # an hour: a record that lingered would fail the test by its timeout


async def _run_send_now(bootstrap: str, topic: str) -> tuple[int, list]:
    await _create(bootstrap, topic)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=LINGER_FOREVER_MS, acks="all")
    await producer.start()
    try:
        records = [(f"user-{seq % KEYS}".encode(), orjson.dumps({"seq": seq})) for seq in range(100)]
        futures = await send_in_batches(producer, topic, records[:60])
        futures += [await producer.send(topic, key=key, value=value) for key, value in records[60:]]
        send_now(producer)
        await asyncio.wait_for(asyncio.gather(*futures), 30)
    finally:
        # A stop flushes: records still lingering would hold it for the hour.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(producer.stop(), 10)
    return len(futures), await _read(bootstrap, topic, 100)


def test_send_now_lets_handed_over_records_leave_without_the_linger(bootstrap: str, topic_name: str) -> None:
    """Batches and single sends alike leave once ``send_now`` is called, not after ``linger_ms``."""
    futures, received = asyncio.run(_run_send_now(bootstrap, topic_name))

    assert futures == PARTITIONS + 40
    assert sorted(record["seq"] for _, _, record in received) == list(range(100))
