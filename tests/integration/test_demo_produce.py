"""``xsell demo-produce`` (the compose stack's demo producer) against the real broker."""

from __future__ import annotations

import uuid

import orjson
import pytest

from stream.demo import generate_catalog

pytestmark = pytest.mark.integration


def test_demo_produce_sends_catalog_campaigns_and_events(xsell, bootstrap, kafka_io):
    prefix = f"dp-{uuid.uuid4().hex[:8]}."
    result = xsell(
        "demo-produce",
        "--broker",
        bootstrap,
        "--topic-prefix",
        prefix,
        "--duration",
        "2",
        "--rate",
        "100",
        "--catalog-size",
        "300",
        "--users",
        "50",
    )
    assert result.returncode == 0, result.stderr
    expected = generate_catalog(size=300, seed=0).records()
    catalog = kafka_io.consume_json(f"{prefix}catalog", until=len(expected), timeout_s=30)
    assert sorted(r["item_id"] for r in catalog) == sorted(r["item_id"] for r in expected)
    assert kafka_io.consume_json(f"{prefix}ad-campaigns", idle_s=1)
    events = [
        record
        for topic in ("clicks", "carts", "purchases")
        for record in kafka_io.consume(f"{prefix}{topic}", idle_s=1, timeout_s=20)
    ]
    assert 100 <= len(events) <= 260, len(events)
    assert all(record.key == orjson.loads(record.value)["user_id"].encode() for record in events)
