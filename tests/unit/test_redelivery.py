"""A record Faust delivers twice within one assignment is processed once (interactions agent)."""

from __future__ import annotations

import asyncio

from faust.types import TP

import stream.app  # noqa: F401  (the app registers the agents; importing an agent first is circular)
from stream.agents import interactions

CLICKS = TP(stream.app.settings.topic("clicks"), 0)
CARTS = TP(stream.app.settings.topic("carts"), 0)


def test_a_record_seen_since_the_assignment_is_refused_until_the_partition_is_revoked() -> None:
    interactions._next_offset.clear()
    try:
        delivered = [(CLICKS, 10), (CLICKS, 11), (CARTS, 3), (CLICKS, 12)]
        assert [interactions._first_delivery(tp, offset) for tp, offset in delivered] == [True] * 4
        # A seek back to the committed offset 10 fetches the same records again.
        again = [(CLICKS, 10), (CLICKS, 11), (CLICKS, 12), (CARTS, 3), (CLICKS, 13), (CARTS, 4)]
        assert [interactions._first_delivery(tp, offset) for tp, offset in again] == [
            False,
            False,
            False,
            False,
            True,
            True,
        ]
        # Revoked, then given back: the next delivery starts at the committed offset and counts.
        asyncio.run(interactions._forget_partitions(None, set()))
        assert interactions._first_delivery(CLICKS, 10)
    finally:
        interactions._next_offset.clear()


def test_offset_spans_name_each_topic_partition_of_a_batch() -> None:
    def record(topic: str, partition: int, offset: int) -> object:
        message = type("Message", (), {"topic": topic, "partition": partition, "offset": offset})()
        return type("Event", (), {"message": message})()

    batch = [record("clicks", 1, 7), record("carts", 1, 3), record("clicks", 1, 9), record("clicks", 0, 4)]
    assert interactions._offset_spans(batch) == [("carts", 1, 3, 3, 1), ("clicks", 0, 4, 4, 1), ("clicks", 1, 7, 9, 2)]
