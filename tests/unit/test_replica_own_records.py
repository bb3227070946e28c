"""The replica skips reading back the association records its own worker applied and published
(``Replica.published``), and ends where reading every record in the topic's order would:
the reference here is a replica that reads the same records and skips nothing."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from stream.metrics import Metrics
from stream.replica import Replica
from stream.settings import Settings


def new_replica() -> Replica:
    return Replica(Settings.from_env({}), Metrics(CollectorRegistry()))


def record(item: str, version: int) -> dict[str, Any]:
    return {"item_id": item, "occurrences": {"view": float(version)}, "opened": float(version), "partners": {}}


def publish(replica: Replica, item: str, version: int) -> tuple[bytes, bytes]:
    """What the co-occurrence agent does: apply the record here, then publish its bytes."""
    value = orjson.dumps(record(item, version))
    replica.apply_association(item, record(item, version))
    replica.published([(item.encode(), value)])
    return item.encode(), value


def foreign(item: str, version: int) -> tuple[bytes, bytes | None]:
    return item.encode(), orjson.dumps(record(item, version))


def state(replica: Replica) -> tuple[dict[str, Any], float, dict[str, Any]]:
    return orjson.loads(orjson.dumps(replica.associations)), replica.transactions, dict(replica.item_counts.counts)


@pytest.mark.parametrize(
    "script",
    [
        # own records read back in order
        [("own", "a", 1), ("read", 0), ("own", "b", 1), ("own", "a", 2), ("read", 1), ("read", 2)],
        # another worker's older record for the item, read only after this worker applied its own
        [("foreign", "a", 1), ("own", "a", 2), ("read", 0), ("read", 1)],
        # two own versions in flight: the first read back must not stay on top
        [("own", "a", 1), ("own", "a", 2), ("read", 0), ("read", 1)],
        # a deletion between an own record and its read-back
        [("own", "a", 1), ("tombstone", "a", 0), ("own", "a", 3), ("read", 0), ("read", 1), ("read", 2)],
        # another worker's newer record after this worker's own one
        [("own", "a", 1), ("foreign", "a", 5), ("read", 0), ("read", 1)],
    ],
    ids=["in-order", "older-foreign-first", "two-own-versions", "tombstone", "newer-foreign-after"],
)
def test_reading_back_own_records_ends_where_reading_every_record_does(script: list[tuple[Any, ...]]) -> None:
    replica, log = new_replica(), []
    for step in script:
        kind = step[0]
        if kind == "own":
            log.append(publish(replica, step[1], step[2]))
        elif kind == "foreign":
            log.append(foreign(step[1], step[2]))
        elif kind == "tombstone":
            log.append((step[1].encode(), None))
        else:
            key, value = log[step[1]]
            replica._association(key, value)
    reference = new_replica()
    for key, value in log:
        reference._association(key, value)
    assert state(replica) == state(reference)


def test_an_own_record_read_back_is_not_parsed_again() -> None:
    replica = new_replica()
    key, value = publish(replica, "a", 1)
    applied = replica.associations["a"]
    replica._association(key, value)
    assert replica.associations["a"] is applied  # not replaced by a parsed copy
    replica._association(key, value)  # read a second time (a re-read): applied as any record
    assert replica.associations["a"] is not applied
    assert replica.associations["a"] == orjson.loads(value)
