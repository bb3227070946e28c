"""Kafka's default partitioning, and writing Faust tables from a batch of events.

Producers (Java's and aiokafka's default partitioners) place a keyed record in
``murmur2(key) mod partitions``; xsell uses the same function to address the co-occurrence
partition that owns an item, so one message per destination partition can carry a whole
batch's pair increments for the items that partition owns.

Faust writes a table's changelog to the partition of the *current event*, a context
variable that ``take_events`` batches do not set in the agent's own task. ``acting_for``
sets it explicitly around the writes that belong to one source partition.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from aiokafka.partitioner import murmur2
from faust.streams import _current_event

__all__ = ["acting_for", "partition_for", "partition_state_key"]


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


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
