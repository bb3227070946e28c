"""A real broker round trip: keyed JSON messages through several partitions."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

pytestmark = pytest.mark.integration

MESSAGES = 10_000
PARTITIONS = 4
KEYS = 37


async def _roundtrip(bootstrap: str, topic: str) -> dict[str, list[int]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
    finally:
        await admin.close()

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    await producer.start()
    try:
        pending = [
            await producer.send(
                topic,
                key=f"user-{seq % KEYS}".encode(),
                value=orjson.dumps({"seq": seq, "user": f"user-{seq % KEYS}"}),
            )
            for seq in range(MESSAGES)
        ]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    received: dict[str, list[int]] = defaultdict(list)
    partitions_of_key: dict[str, set[int]] = defaultdict(set)
    try:
        count = 0
        while count < MESSAGES:
            batches = await asyncio.wait_for(consumer.getmany(timeout_ms=1000, max_records=2000), 30)
            for tp, records in batches.items():
                for record in records:
                    payload = orjson.loads(record.value)
                    assert record.key.decode() == payload["user"]
                    received[payload["user"]].append(payload["seq"])
                    partitions_of_key[payload["user"]].add(tp.partition)
                    count += 1
        extra = await consumer.getmany(timeout_ms=1000)
        assert sum(len(records) for records in extra.values()) == 0, "more messages than were sent"
    finally:
        await consumer.stop()
    assert all(len(parts) == 1 for parts in partitions_of_key.values()), "a key spread over partitions"
    assert len({p for parts in partitions_of_key.values() for p in parts}) > 1, "only one partition used"
    return received


def test_10k_keyed_messages_keep_per_key_order_without_loss_or_duplicates(bootstrap, topic_name):
    received = asyncio.run(_roundtrip(bootstrap, topic_name))

    expected = defaultdict(list)
    for seq in range(MESSAGES):
        expected[f"user-{seq % KEYS}"].append(seq)
    assert sum(len(v) for v in received.values()) == MESSAGES
    for key, seqs in expected.items():
        assert received[key] == seqs, f"order, loss or duplicates for {key}"
