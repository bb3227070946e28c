"""``send_in_batches`` against a real broker: every record where ``producer.send`` would put it,
in order, none lost or repeated, also when a partition's records fill several batches."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from stream.partitions import send_in_batches

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


async def _read(bootstrap: str, topic: str, count: int) -> list[tuple[int, bytes, dict]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    found: list[tuple[int, bytes, dict]] = []
    try:
        while len(found) < count:
            batches = await asyncio.wait_for(consumer.getmany(timeout_ms=1000, max_records=5000), 30)
            for tp, records in batches.items():
                found.extend((tp.partition, record.key, orjson.loads(record.value)) for record in records)
        extra = await consumer.getmany(timeout_ms=1000)
        found.extend(
            (tp.partition, record.key, orjson.loads(record.value)) for records in extra.values() for record in records
        )
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
