"""The demo's shop, alone: generated catalog, campaigns and shoppers sent to a Kafka that
already runs xsell (the Docker stack's ``demo-producer`` service, behind the ``demo``
profile). ``xsell demo`` does the same plus its own broker, worker and display."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from stream.demo.sources import simulated_source
from stream.settings import Settings
from stream.topics import admin_security

__all__ = ["produce_demo"]

TICK_S = 0.1


async def produce_demo(
    settings: Settings, *, duration_s: float | None, rate: float, seed: int, catalog_size: int, users: int
) -> dict[str, int]:
    """Send the catalog and campaigns, then ``rate`` events/s for ``duration_s`` (None: forever)."""
    from aiokafka import AIOKafkaProducer

    source = simulated_source(
        seed=seed, catalog_size=catalog_size, users=users, rate=rate, start_ms=int(time.time() * 1000)
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, linger_ms=10, acks="all", **admin_security(settings)
    )
    await producer.start()
    sent = {"catalog": 0, "ad-campaigns": 0, "events": 0}
    try:

        async def send(topic: str, key: Any, record: dict[str, Any]) -> Any:
            return await producer.send(settings.topic(topic), key=str(key).encode(), value=orjson.dumps(record))

        futures = [await send("catalog", record["item_id"], record) for record in source.catalog_records]
        futures += [await send("ad-campaigns", c["campaign_id"], c) for c in source.catalog.campaigns]
        await asyncio.gather(*futures)
        sent["catalog"] = len(source.catalog_records)
        sent["ad-campaigns"] = len(source.catalog.campaigns)
        started = time.monotonic()
        while duration_s is None or time.monotonic() - started < duration_s:
            due = int(rate * (time.monotonic() - started)) - sent["events"]
            batch = [next(source.events) for _ in range(max(0, due))]
            futures = [await send(topic, event["user_id"], event) for topic, event in batch]
            await asyncio.gather(*futures)
            sent["events"] += len(batch)
            await asyncio.sleep(TICK_S)
    finally:
        await producer.stop()
    return sent
